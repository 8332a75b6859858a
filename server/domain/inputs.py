"""Reading what clients send: whole numbers a database row can have, and JSON of bounded depth.

Both refuse with ``InvalidInput`` and a message that says what was wrong, so that a
20-digit id or a JSON body nested a hundred thousand levels deep is a 400, never an
``OverflowError`` from SQLite or a ``RecursionError`` from the parser.
"""

from __future__ import annotations

import json
import re
from typing import Any

from server.domain import wording
from server.domain.errors import InvalidInput

# Every id column is an INTEGER (PostgreSQL's is 32 bits); sequence numbers are BIGINT.
MAX_ID = 2**31 - 1
MAX_SEQ = 2**63 - 1
# An export's rich text is the deepest JSON we take: about four levels per nested list.
MAX_JSON_DEPTH = 100

_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() accepts "²", int() does not
# A JSON string (skipped: brackets inside it do not nest), or a bracket.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)


def whole_number(value: object, what: str, maximum: int = MAX_ID) -> int:
    """``value`` (text from a path, query or form, or a JSON number) as an int in 0..maximum.

    ``what`` names it for the message, e.g. "The version in the address".
    """
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    if number is None or not 0 <= number <= maximum:
        raise InvalidInput(
            wording.sentence(
                f"{what} must be a whole number from 0 to {maximum}: check the link or the form"
            )
        )
    return number


def parse_json(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads``, refusing a document nested deeper than ``max_depth`` before parsing it.

    Malformed JSON raises ``ValueError`` as ``json.loads`` does (callers word that one);
    too deep raises ``InvalidInput``.
    """
    text = raw.decode(json.detect_encoding(raw)) if isinstance(raw, bytes) else raw
    if text.count("[") + text.count("{") > max_depth:  # else it cannot be too deep
        depth = 0
        for token in _JSON_TOKENS.finditer(text):
            bracket = token.group()
            if bracket in ("[", "{"):
                depth += 1
                if depth > max_depth:
                    raise InvalidInput(
                        f"The JSON is nested more than {max_depth} levels deep; "
                        "send a flatter document"
                    )
            elif bracket in ("]", "}"):
                depth -= 1
    return json.loads(text)

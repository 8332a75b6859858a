"""What of our own mail a reply may quote back: each line of the plain-text templates.

The email bridge never keeps our notification's wording as the context of a partner's
answer. Rather than a second copy of that wording, the patterns are read from the templates
the mail is rendered from, so a change of wording cannot leave the bridge behind: every
``{{ value }}`` becomes "any text", ``{% … %}`` tags are dropped, and a line with too little
fixed wording to be recognised (an excerpt in quotes) is left out on purpose — the excerpt
is the authors' text, and a partner answering it may keep it as context.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

_FIXED_CHARACTERS = 5  # fewer non-space fixed characters than this and a line says too little
_TAG = re.compile(r"\{%.*?%\}|\{#.*?#\}")
_VALUE = re.compile(r"\{\{.*?\}\}")


@cache
def quoted_echoes() -> tuple[re.Pattern[str], ...]:
    """One pattern per recognisable line of our plain-text mail (matched on a stripped line)."""
    patterns: list[re.Pattern[str]] = []
    for template in sorted(files("server.mail").joinpath("templates").iterdir(), key=str):
        if not template.name.endswith(".txt"):
            continue
        for line in template.read_text(encoding="utf-8").splitlines():
            line = _TAG.sub("", line).strip()
            fixed = _VALUE.split(line)
            if sum(len(part.replace(" ", "")) for part in fixed) < _FIXED_CHARACTERS:
                continue
            body = ".+?".join(re.escape(part) for part in fixed)
            patterns.append(re.compile(rf"\s*{body}\s*", re.DOTALL))
    return tuple(patterns)


def is_echo(line: str) -> bool:
    """Whether ``line`` (without its quote markers) is a line of our own mail's wording."""
    text = line.strip()
    return bool(text) and any(p.fullmatch(text) for p in quoted_echoes())

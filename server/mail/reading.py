"""The policy incoming mail is read with: ``email.policy.default``, minus needless costs.

``policy.default`` parses a header each time it is read, and builds a new header class
(``type(...)``, through ``ABCMeta``) each time too. Reading one reply reads a dozen headers,
its Content-Type seven times (``get_content_type``, ``get_param``, …), so the bridge spent
most of its parsing CPU there. ``READING_POLICY`` is ``policy.default`` with a registry that
builds each class once, and with the parsed headers of recently read values kept: the
same classes, the same parsing, the same results (tests/unit/test_mail_reading.py compares
them with ``policy.default``'s).
"""

from __future__ import annotations

from collections import OrderedDict
from email.headerregistry import BaseHeader, HeaderRegistry
from email.policy import EmailPolicy
from typing import Any

KEPT_HEADERS = 512  # parsed header values kept (a few messages' worth)
KEPT_VALUE_CHARS = 2048  # longer values are parsed each time rather than kept


class KeptHeaderRegistry(HeaderRegistry):
    """A ``HeaderRegistry`` whose header classes are built once per kind of header.

    The classes hold no state of their own (``parse`` and ``init`` are class and instance
    methods over their arguments), so one class can serve every message. They are kept per
    specialised class, not per header name, so mail inventing header names cannot grow it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._kept: dict[type[Any], type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        specialised: type[Any] = self.registry.get(name.lower(), self.default_class)
        kept = self._kept.get(specialised)
        if kept is None:
            kept = self._kept[specialised] = super().__getitem__(name)
        return kept


class ReadingPolicy(EmailPolicy):
    """``policy.default`` that parses a given header value once, while it is recent.

    A parsed header is a read-only ``str`` (its value, parse tree and defects are fixed
    when it is made), so handing the same one out again is safe. Kept in a small
    least-recently-used table shared by every message; values longer than
    ``KEPT_VALUE_CHARS`` are not kept, so hostile mail cannot make it hold much.
    """

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if (
            hasattr(value, "name")
            or len(value) > KEPT_VALUE_CHARS
            or self.header_factory is not _REGISTRY  # a clone with a registry of its own
        ):
            return super().header_fetch_parse(name, value)
        key = (name, value)
        parsed = _PARSED.get(key)
        if parsed is None:
            parsed = _PARSED[key] = super().header_fetch_parse(name, value)
            if len(_PARSED) > KEPT_HEADERS:
                _PARSED.popitem(last=False)
        else:
            _PARSED.move_to_end(key)
        return parsed


_PARSED: OrderedDict[tuple[str, str], Any] = OrderedDict()
_REGISTRY = KeptHeaderRegistry()

READING_POLICY = ReadingPolicy(header_factory=_REGISTRY)

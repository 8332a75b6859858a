"""Rewrite the words of a stored email (headers and text parts) for an erasure.

A name or address in a stored message may be encoded (RFC 2047 headers, quoted-printable
or base64 bodies), so replacing bytes would miss it: the message is parsed, each header and
each text part is decoded, rewritten and encoded again. Other parts (attachments) keep their
bytes; their file names are headers and are rewritten. A message that cannot be parsed back
is replaced by a note saying so rather than kept with the details in it.
"""

from __future__ import annotations

from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

UNREADABLE = b"Subject: (message removed by an erasure)\r\n\r\nThis message could not be read.\r\n"


def redact_message(raw: bytes, rewrite: Callable[[str], str]) -> bytes:
    """``raw`` with every header and text part passed through ``rewrite`` (the same bytes
    when nothing in it changes)."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        if not _redact(message, rewrite):
            return raw
        return message.as_bytes()
    except Exception:  # a malformed stored message: keep nothing of it
        return UNREADABLE


def _redact(part: EmailMessage, rewrite: Callable[[str], str]) -> bool:
    """Rewrite the part in place; True if anything changed."""
    changed = False
    for name in set(part.keys()):
        values = [str(value) for value in part.get_all(name, [])]
        rewritten = [rewrite(value) for value in values]
        if rewritten != values:
            changed = True
            del part[name]
            for value in rewritten:
                part[name] = value
    if part.is_multipart():
        for sub in part.iter_parts():
            assert isinstance(sub, EmailMessage)
            changed = _redact(sub, rewrite) or changed
    elif part.get_content_maintype() == "text":
        text = part.get_content()
        new = rewrite(text)
        if new != text:
            changed = True
            part.set_content(new, subtype=part.get_content_subtype())
    return changed

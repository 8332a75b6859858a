"""``READING_POLICY`` reads mail exactly as ``policy.default`` does, only cheaper."""

from __future__ import annotations

import email
from email.message import Message
from email.policy import default
from pathlib import Path

from server.mail import reading
from server.mail.reading import READING_POLICY

MAIL = Path(__file__).resolve().parents[1] / "fixtures" / "mail"


def _seen(message: Message) -> list[tuple[str, str, str, str, tuple[str, ...]]]:
    """What a reader sees of every header of every part: value, class, parameters, defects."""
    seen = []
    for part in message.walk():
        for name in part:
            for value in part.get_all(name) or []:
                params = getattr(value, "params", {})
                seen.append(
                    (
                        name,
                        str(value),
                        type(value).__mro__[1].__name__,
                        repr(sorted(dict(params).items())),
                        tuple(type(d).__name__ for d in getattr(value, "defects", ())),
                    )
                )
        seen.append(("content", part.get_content_type(), str(part.get_param("charset")), "", ()))
    return seen


def test_every_stored_mail_reads_the_same_as_with_the_default_policy() -> None:
    files = sorted(MAIL.rglob("*.eml"))
    assert len(files) > 20
    for path in files:
        raw = path.read_bytes()
        for _ in range(2):  # the second time from what was kept
            assert _seen(email.message_from_bytes(raw, policy=READING_POLICY)) == _seen(
                email.message_from_bytes(raw, policy=default)
            ), path.name


def test_mail_inventing_headers_cannot_grow_what_is_kept() -> None:
    for number in range(5000):
        raw = f"X-Invented-{number}: value {number}\r\nSubject: s{number}\r\n\r\nbody\r\n".encode()
        message = email.message_from_bytes(raw, policy=READING_POLICY)
        assert str(message[f"X-Invented-{number}"]) == f"value {number}"
    assert len(reading._PARSED) <= reading.KEPT_HEADERS
    assert len(reading._REGISTRY._kept) < 40  # one class per kind of header, not per name

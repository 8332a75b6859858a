"""Outgoing messages: both parts, our headers, and no header injection."""

from __future__ import annotations

from email import message_from_bytes, policy

from hypothesis import given
from hypothesis import strategies as st

from server.mail.compose import LOOP_HEADER, Outgoing, compose, new_message_id, one_line


def _mail(**changes: object) -> Outgoing:
    values: dict[str, object] = {
        "sender": "OpenDPIA <notifications@opendpia.example>",
        "recipient": "ann@camden.example",
        "recipient_name": "Ann Smith",
        "subject": "DPIA-CAM-2026-1: Tom changed Step 1",
        "text": "Tom Evans changed 'aims'.",
        "html": "<p>Tom Evans changed <b>aims</b>.</p>",
        "message_id": new_message_id("opendpia.example"),
        "headers": {"List-Unsubscribe": "<https://opendpia.example/u/abc>"},
    }
    values.update(changes)
    return Outgoing(**values)  # type: ignore[arg-type]


def _parse(raw: bytes):  # type: ignore[no-untyped-def]
    return message_from_bytes(raw, policy=policy.default)


def test_a_message_has_both_parts_and_our_headers() -> None:
    mail = _mail()
    parsed = _parse(compose(mail, installation="test"))
    assert parsed["Message-ID"] == mail.message_id
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed[LOOP_HEADER] == "test"
    assert parsed["List-Unsubscribe"] == "<https://opendpia.example/u/abc>"
    assert parsed.get_body(("plain",)).get_content().strip() == "Tom Evans changed 'aims'."
    assert "<b>aims</b>" in parsed.get_body(("html",)).get_content()


def test_line_breaks_in_names_and_subjects_cannot_add_headers() -> None:
    raw = compose(
        _mail(
            recipient_name="Ann\r\nBcc: victim@evil.example",
            subject="Hello\nX-Injected: yes\r\n\r\nbody",
        ),
        installation="test",
    )
    parsed = _parse(raw)
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert "victim@evil.example" in str(parsed["To"])  # kept as text of the name
    assert str(parsed["Subject"]) == "Hello X-Injected: yes body"


@given(st.text(max_size=80), st.text(max_size=120))
def test_any_name_and_subject_encode_to_one_header_each(name: str, subject: str) -> None:
    raw = compose(_mail(recipient_name=name, subject=subject), installation="test")
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    names = [line.split(b":", 1)[0] for line in head.split(b"\r\n") if not line[:1].isspace()]
    assert names.count(b"Subject") == 1 and names.count(b"To") == 1
    parsed = _parse(raw)
    (address,) = parsed["To"].addresses
    # The stdlib may show a space where it folded a long encoded name; nothing else changes.
    assert address.display_name.replace(" ", "") == one_line(name).replace(" ", "")
    assert address.addr_spec == "ann@camden.example"

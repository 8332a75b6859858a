"""Building outgoing messages with the standard library, safely.

Header values never carry a line break (a name or title typed with CR/LF cannot add a
header), and non-ASCII text is encoded by ``email.policy.SMTP`` (RFC 2047 / 8-bit MIME).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid

LOOP_HEADER = "X-OpenDPIA-Loop"
# Fold only past RFC 5322's hard limit: a folded List-Unsubscribe URL reads back with a
# leading space, and some receivers take the header literally.
_POLICY = SMTP.clone(max_line_length=998)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def one_line(value: str, limit: int = 300) -> str:
    """A header-safe value: control characters (CR and LF among them) become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def new_message_id(domain: str, kind: str = "n") -> str:
    return make_msgid(idstring=kind, domain=domain)


@dataclass(frozen=True)
class Outgoing:
    sender: str
    recipient: str
    recipient_name: str
    subject: str
    text: str
    html: str | None
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)
    # "auto-replied" for the email bridge's answers to a person's mail (RFC 3834).
    auto_submitted: str = "auto-generated"


def compose(mail: Outgoing, *, installation: str) -> bytes:
    """The RFC 5322 bytes of ``mail``; ``installation`` marks our own mail for loop detection."""
    message = EmailMessage(policy=_POLICY)
    message["From"] = one_line(mail.sender)
    message["To"] = Address(display_name=one_line(mail.recipient_name), addr_spec=mail.recipient)
    message["Subject"] = one_line(mail.subject, 250)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = mail.message_id
    message["Auto-Submitted"] = mail.auto_submitted
    message[LOOP_HEADER] = one_line(installation, 100)
    for name, value in mail.headers.items():
        message[one_line(name, 60)] = one_line(value, 900)
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    return message.as_bytes()

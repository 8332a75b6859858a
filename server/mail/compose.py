"""Building outgoing messages with the standard library, safely.

Header values never carry a line break (a name or title typed with CR/LF cannot add a
header); non-ASCII header text is RFC 2047-encoded and bodies are quoted-printable UTF-8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid
from io import BytesIO

LOOP_HEADER = "X-OpenDPIA-Loop"
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable in the raw message, safe for any line length
_UTF8.header_encoding = QP
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
    """The RFC 5322 bytes of ``mail``; ``installation`` marks our own mail for loop detection.

    Built with the ``compat32`` MIME classes: ``email.policy.SMTP``'s header registry
    re-parses every header it is given and made composing cost ~20 ms a message under load
    (bench/README.md); these are ~10 times cheaper and produce the same standard message.
    """
    text = _text_part(mail.text, "plain")
    if mail.html is None:
        message: Message = text
    else:
        message = MIMEMultipart("alternative")
        message.attach(text)
        message.attach(_text_part(mail.html, "html"))
    message["From"] = _header(one_line(mail.sender))
    message["To"] = formataddr((one_line(mail.recipient_name), mail.recipient), charset="utf-8")
    message["Subject"] = _header(one_line(mail.subject, 250))
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = mail.message_id
    message["Auto-Submitted"] = mail.auto_submitted
    message[LOOP_HEADER] = one_line(installation, 100)
    for name, value in mail.headers.items():
        message[one_line(name, 60)] = _header(one_line(value, 900))
    out = BytesIO()
    # No folding: values are single lines of at most 900 characters (RFC 5322 allows 998),
    # and a folded List-Unsubscribe URL reads back with a space some receivers keep.
    BytesGenerator(out, mangle_from_=False, maxheaderlen=0).flatten(message, linesep="\r\n")
    return out.getvalue()


def _text_part(body: str, subtype: str) -> MIMEText:
    part = MIMEText(body, subtype, _UTF8)  # type: ignore[arg-type]  # a Charset is accepted
    del part["MIME-Version"]
    return part


def _header(value: str) -> str:
    """ASCII as it is; anything else RFC 2047-encoded (a str, as Message's typing wants)."""
    return value if value.isascii() else Header(value, "utf-8").encode()

"""Reading a stored message: the sender, the reply's text and its attachments, never a crash.

The standard library parses (``email`` with ``policy.default``, its parsed headers kept:
``server.mail.reading``); this module adds the caps
hostile mail needs (parts, nesting depth, decoded size), a charset fallback for mail that
lies about its encoding, RFC 3676 ``format=flowed`` unwrapping, and HTML-only mail turned
into plain text after sanitising with nh3 (scripts, styles, ``javascript:``/``data:`` links
and images gone before html2text sees it).
"""

from __future__ import annotations

import codecs
import email
import re
import unicodedata
from dataclasses import dataclass, field
from email.errors import UndecodableBytesDefect
from email.message import EmailMessage, Message
from pathlib import PurePosixPath
from typing import Any

import html2text
import nh3

from email_bridge.attachments import ACCEPTED, judge
from server.mail.reading import READING_POLICY

MAX_PARTS = 60
MAX_DEPTH = 8
MAX_DECODED_BYTES = 12 * 1024 * 1024
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
MAX_ATTACHMENTS = 10
MAX_TEXT_CHARS = 200_000

# Characters that change how text reads without being seen: every format character
# (Unicode category Cf): bidi marks, overrides and isolates (U+061C, U+200E, U+202A-E,
# U+2066-9), zero-width characters, the BOM, the soft hyphen, interlinear annotation marks,
# and the tag characters (U+E0000 block) that can carry text no reader sees.
# tests/unit/test_bridge_fuzz.py checks this class against the running Python's Unicode.
_INVISIBLE = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!])")
_BLANK_RUN = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?/?>|<!--.*?-->|<![^<>]*>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class ReadMail:
    """What the processor needs from one message."""

    message: Message
    message_id: str
    subject: str
    from_address: str | None
    from_problem: str | None
    text: str
    from_html: bool
    attachments: list[Attachment] = field(default_factory=list)
    refused_attachments: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def header(self, name: str) -> str:
        """A header's value as text ('' when absent or unreadable)."""
        try:
            value = self.message.get(name)
        except Exception:  # a malformed header reads as absent
            return ""
        return clean_line(str(value)) if value is not None else ""

    def headers(self, name: str) -> list[str]:
        try:
            values = self.message.get_all(name) or []
        except Exception:
            return []
        return [clean_line(str(v)) for v in values]


def clean_line(value: str, limit: int = 1000) -> str:
    return " ".join(_CONTROL.sub(" ", _INVISIBLE.sub("", value)).split())[:limit]


def clean_text(text: str) -> str:
    """Plain text safe to show: no control or invisible characters, no markup, NFC.

    Comments are plain text everywhere, but a mangled message can make an HTML part read
    as plain text: tags (and the content of script and style) are removed, while text such
    as "< 5 records" or "a<b" stays as written.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", _INVISIBLE.sub("", text))
    text = _SCRIPT.sub("", text)
    text = _TAG.sub("", text)
    return unicodedata.normalize("NFC", text)


def read(raw: bytes) -> ReadMail:
    """Parse ``raw``; whatever it holds, the result is a ReadMail (problems are noted)."""
    try:
        return _read(raw)
    except RecursionError:
        # Parts (or comments in a Content-Type) nested deeper than the stdlib parser's
        # recursion allows: nothing of it is trusted, so nothing is posted or answered.
        mail = ReadMail(
            message=EmailMessage(policy=READING_POLICY),
            message_id="",
            subject="",
            from_address=None,
            from_problem="the message is nested too deeply to be read",
            text="",
            from_html=False,
        )
        mail.problems.append("nested too deeply; the message was not read")
        return mail


def _read(raw: bytes) -> ReadMail:
    message = email.message_from_bytes(raw, policy=READING_POLICY)
    mail = ReadMail(
        message=message,
        message_id="",
        subject="",
        from_address=None,
        from_problem=None,
        text="",
        from_html=False,
    )
    mail.message_id = mail.header("Message-ID")[:300]
    mail.subject = mail.header("Subject")[:250]
    mail.from_address, mail.from_problem = _sender(message)
    plain: list[str] = []
    html: list[str] = []
    budget = [MAX_DECODED_BYTES]
    for part, depth in _walk(message, mail.problems):
        if depth > MAX_DEPTH:
            mail.problems.append("nested too deeply; the rest was not read")
            break
        _take(part, mail, plain, html, budget)
    if plain:
        mail.text = clean_text("\n\n".join(plain))[:MAX_TEXT_CHARS]
    elif html:
        mail.text = clean_text(html_to_text("\n".join(html)))[:MAX_TEXT_CHARS]
        mail.from_html = True
    return mail


def _sender(message: Message) -> tuple[str | None, str | None]:
    try:
        values = message.get_all("From") or []
        if len(values) != 1:
            return None, "the message must have exactly one From header"
        header = values[0]
        addresses: tuple[Any, ...] = tuple(getattr(header, "addresses", ()))
        # Raw UTF-8 (RFC 6532; we offer SMTPUTF8) reads as undecodable bytes: harmless in a
        # display name, and an address holding them fails the printable check below.
        defects = [
            d for d in getattr(header, "defects", ()) if not isinstance(d, UndecodableBytesDefect)
        ]
        if defects or len(addresses) != 1:
            return None, "the From header must name exactly one well-formed address"
        address = str(addresses[0].addr_spec).strip().lower()
    except Exception:
        return None, "the From header cannot be read"
    if "@" not in address or not address.isprintable() or len(address) > 254:
        return None, "the From header must name exactly one well-formed address"
    return address, None


def _walk(message: Message, problems: list[str]) -> list[tuple[Message, int]]:
    """Leaf parts with their depth, at most MAX_PARTS of them."""
    leaves: list[tuple[Message, int]] = []
    stack: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > MAX_PARTS * 2:
            problems.append("too many MIME parts; the rest was not read")
            break
        if depth > MAX_DEPTH:
            leaves.append((part, depth))
            break
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend(
                (child, depth + 1) for child in reversed(payload) if isinstance(child, Message)
            )
        elif part.get_content_type() == "message/rfc822":
            continue  # a forwarded message is not the reply; its text is not ours to post
        else:
            leaves.append((part, depth))
            if len(leaves) >= MAX_PARTS:
                problems.append("too many MIME parts; the rest was not read")
                break
    return leaves


def _take(
    part: Message, mail: ReadMail, plain: list[str], html: list[str], budget: list[int]
) -> None:
    content_type = part.get_content_type()
    disposition = (part.get_content_disposition() or "").lower()
    try:
        data = part.get_payload(decode=True)
    except Exception:
        mail.problems.append(f"a {content_type} part could not be decoded")
        return
    if not isinstance(data, bytes):
        return
    budget[0] -= len(data)
    if budget[0] < 0:
        mail.problems.append("the decoded message is too large; the rest was not read")
        return
    name = _filename(part)
    if disposition != "attachment" and name is None and content_type == "text/plain":
        plain.append(_decode(part, data))
    elif disposition != "attachment" and name is None and content_type == "text/html":
        html.append(_decode(part, data))
    elif disposition == "attachment" or name is not None:
        _attachment(mail, name or "attachment", content_type, data)


def _decode(part: Message, data: bytes) -> str:
    charset = str(part.get_content_charset() or "utf-8")
    text: str | None = None
    try:
        codecs.lookup(charset)
        text = data.decode(charset)
    except (LookupError, UnicodeDecodeError, ValueError):
        for fallback in ("utf-8", "cp1252"):
            try:
                text = data.decode(fallback)
                break
            except UnicodeDecodeError:
                continue
    if text is None:
        text = data.decode("latin-1")
    if str(part.get_param("format") or "").lower() == "flowed":
        text = unflow(text, delsp=str(part.get_param("delsp") or "").lower() == "yes")
    return text


def unflow(text: str, *, delsp: bool = False) -> str:
    """RFC 3676: join soft-broken lines (ending in a space) of the same quote depth."""
    out: list[str] = []
    pending: str | None = None
    pending_depth = 0
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        if body.startswith(" "):
            body = body[1:]  # space-stuffing
        if pending is not None and depth != pending_depth:
            out.append(">" * pending_depth + (" " if pending_depth else "") + pending)
            pending = None
        if body.endswith(" ") and body != "-- ":
            piece = body[:-1] if delsp else body
            pending = piece if pending is None else pending + piece
            pending_depth = depth
            continue
        full = body if pending is None else pending + body
        pending = None
        out.append(">" * depth + (" " if depth else "") + full)
    if pending is not None:
        out.append(">" * pending_depth + (" " if pending_depth else "") + pending)
    return "\n".join(out)


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return "attachment"
    return str(name) if name else None


def safe_filename(name: str, content_type: str) -> str:
    """A file name that cannot climb directories, hide its type or reverse itself."""
    name = clean_line(name, 300).replace("\\", "/")
    name = PurePosixPath(name).name.strip(". ")
    name = re.sub(r"[^\w.() +-]", "_", name)[:120] or "attachment"
    extension = ACCEPTED.get(content_type, "")
    if extension and not name.lower().endswith(extension):
        name += extension
    return name


def _attachment(mail: ReadMail, name: str, declared: str, data: bytes) -> None:
    """Keep a file as the type its bytes say, or note why it was refused (by its shown
    name: bidi overrides and other invisible characters removed, so it reads as it is)."""
    shown = clean_line(name, 80) or "attachment"
    if len(data) > MAX_ATTACHMENT_BYTES:
        mail.refused_attachments.append(
            f"{shown} (larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB)"
        )
        return
    verdict = judge(clean_line(name, 300), data, declared)
    if verdict.content_type is None:
        mail.refused_attachments.append(f"{shown} ({verdict.refusal})")
    elif len(mail.attachments) >= MAX_ATTACHMENTS:
        mail.refused_attachments.append(f"{shown} (at most {MAX_ATTACHMENTS} files per reply)")
    else:
        kind = verdict.content_type
        mail.attachments.append(Attachment(safe_filename(name, kind), kind, data))


_SAFE_TAGS = {
    "a", "b", "blockquote", "br", "div", "em", "h1", "h2", "h3", "h4", "i", "li", "ol", "p",
    "pre", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "u", "ul",
}  # fmt: skip


def html_to_text(html: str) -> str:
    """Sanitise (nh3: no script, style, image, event handler or unsafe URL), then to text."""
    safe = nh3.clean(
        html,
        tags=_SAFE_TAGS,
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
    )
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_tables = True
    converter.unicode_snob = True
    converter.protect_links = True
    # html2text writes Markdown: it escapes a "- " or "1. " that starts a line (and doubles
    # a backslash before such characters). A partner's "- item" must not reach the comment
    # as "\- item": removing one backslash before each of those characters undoes exactly
    # what it did.
    text = _MARKDOWN_ESCAPE.sub(r"\1", converter.handle(safe))
    # In HTML, space between paragraphs is presentation: one blank line stands for it, so
    # that the blank lines a plain-text reply keeps as written mean the same here.
    return _BLANK_RUN.sub("\n\n", text)

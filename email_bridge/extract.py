"""The partner's words in a reply, and nothing else; what is set aside is kept, not thrown away.

A reply is read as structure, not cut at the first quote. Its lines fall into segments:

- **new text**: what the partner wrote, wherever it is: above the quote (top-posting),
  between quoted lines (inline answers), below it (bottom-posting), or all of it;
- **quoted history**: the attribution ("On … wrote:" in any of the languages in
  ``mailwords``, wrapped or not; or, in a language we do not know, a line ending in a colon
  right above a quote of our own notification), a separator ("-----Original Message-----"),
  an Outlook-style header block (``From:`` then ``Sent:``/``To:``/``Subject:`` …) and
  everything below it, and every ``>``-quoted line;
- **signature** and **disclaimer** at the end of the new text.

The comment is every segment of new text. Inline answers keep, as context, the one quoted
line they answer (never a line of our own notification's wording, see
``server.mail.echoes``); a bottom-posted reply keeps none. What is set aside is returned
beside the text, so that the DPIA's owners can read it and nothing sent is unrecoverable.

When the reply quotes nothing we can recognise as an original (no attribution, separator,
header block or quoted notification), every line is the partner's, ``>`` included: a
partner's ">500 records" is theirs. A ``>`` followed by a digit, ``=``, a currency or a
percent sign is never a quote marker. Where a reply keeps lines that might be quoted, it
says so (``unsure``), and the owners see "kept, possibly quoted".

Why our own engine: the reply parsers on PyPI strip every line's indentation, cut inline
answers at the first quote, or read ``- item`` lists as signatures (docs/email-bridge.md
has the comparison; ``python -m bench.replies`` measures it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from email_bridge.mailwords import (
    DISCLAIMER_CUES,
    DISCLAIMER_OPENINGS,
    DISCLAIMER_STRONG,
    FROM_LABELS,
    HEADER_LABELS,
    SENT_FROM,
    SEPARATOR_NAMES,
    VALEDICTIONS,
    WROTE,
)
from server.mail.echoes import is_echo

_QUOTED = re.compile(r"^[ \t]{0,3}>(?![\d=£€$%])")
_QUOTE_MARKS = re.compile(r"^(?:[ \t]*>(?![\d=£€$%]))+ ?")
_ATTRIBUTION = re.compile(rf"^.{{0,400}}?\b(?:{WROTE})(?!\w).{{0,300}}?[:\uff1a]\s*$", re.I)
_DATE_OR_ADDRESS = re.compile(r"\d|@")
_ENDS_IN_COLON = re.compile(r"[:\uff1a]\s*$")
_FROM_LINE = re.compile(rf"^\s*\**\s*(?:{FROM_LABELS})\s*\**\s*:", re.I)
_HEADER_ANY = re.compile(rf"^\s*\**\s*(?:{FROM_LABELS}|{HEADER_LABELS})\s*\**\s*:", re.I)
_SEPARATOR = re.compile(
    rf"^\s*(?:-{{2,}}\s*(?:{SEPARATOR_NAMES})\s*-{{2,}}|_{{20,}}|-{{20,}}|"
    r"begin\s+forwarded\s+message:|anfang\s+der\s+weitergeleiteten\s+nachricht:|"
    r"début\s+du\s+message\s+réexpédié\s*:|inicio\s+del\s+mensaje\s+reenviado:|"
    r"inizio\s+messaggio\s+inoltrato:|begin\s+doorgestuurd\s+bericht:|"
    r"início\s+da\s+mensagem\s+reencaminhada:)\s*$",
    re.I,
)
# A dashed line naming something ("----- Neges a anfonwyd -----"): a separator when a
# header block follows it, whatever the language.
_DASHED = re.compile(r"^\s*-{3,}\s*[^-\s][^-]{1,58}?\s*-{3,}\s*$")
_PERSONAL_LINK = re.compile(r"https?://\S+?/(?:r|unsubscribe)/\S+")
_LINK = re.compile(r"\b(?:https?|ftp)://|\bwww\.|mailto:", re.I)
_SENT_FROM = re.compile(rf"^\s*(?:{SENT_FROM})\b", re.I)
_OUTLOOK_APP = re.compile(r"^\s*.{0,60}?\boutlook\b.{0,30}?\b(?:ios|android)\b.{0,60}$", re.I)
_NAME = r"[A-ZÀ-ÝĀ-Ž][\w'\u2019.-]*(?:\s+[A-ZÀ-ÝĀ-Ž][\w'\u2019.-]*){0,2}"
_VALEDICTION = re.compile(
    rf"^\s*(?i:(?:{VALEDICTIONS})\s*[,.!]?(?:\s*/\s*(?:{VALEDICTIONS}))?)\s*[,.!]*"
    rf"(?:\s+{_NAME})?\s*$"
)
_DISCLAIMER_CUES = [re.compile(cue, re.I) for cue in DISCLAIMER_CUES]
_DISCLAIMER_STRONG = [re.compile(cue, re.I) for cue in DISCLAIMER_STRONG]
_DISCLAIMER_OPENING = re.compile(DISCLAIMER_OPENINGS, re.I)
_DECORATION = re.compile(r"^[\W_]+$")
_UNSUBSCRIBE = re.compile(
    r"^\W*(?:unsubscribe|stop|remove\s+me|abmelden|désabonner|se\s+désabonner|"
    r"darse\s+de\s+baja|cancella\s+iscrizione|afmelden|dad-danysgrifio)\W*$",
    re.IGNORECASE,
)
_DISCLAIMER_WORDS = 20
_CONTACT_LINES = 7
_CONTACT_WIDTH = 80


@dataclass(frozen=True, slots=True)
class Reply:
    """The partner's words (``text``) and what was set aside from them, all kept."""

    text: str
    signature: str = ""
    quoted_context: bool = False
    disclaimer: str = ""
    history: str = ""
    unsure: bool = False

    @property
    def is_unsubscribe(self) -> bool:
        return bool(_UNSUBSCRIBE.fullmatch(self.text.strip()))

    @property
    def set_aside(self) -> str:
        """Everything that is not in the comment, for the owners' inbound page."""
        parts = [
            ("Signature", self.signature),
            ("Disclaimer", self.disclaimer),
            ("Quoted email", self.history),
        ]
        shown = "\n\n".join(f"[{name}]\n{text}" for name, text in parts if text.strip())
        # Our notification's personal links (a partner's read link, their unsubscribe
        # token) are theirs alone, not the owners'.
        return _PERSONAL_LINK.sub("[personal link removed]", shown)


@dataclass
class _Segment:
    lines: list[str] = field(default_factory=list)
    context: str | None = None


def extract(body: str, marker: str | None = None) -> Reply:
    """Read ``body`` (the decoded plain text) as a reply to our mail carrying ``marker``."""
    lines = [line.rstrip() for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    cut = _marker_line(lines, marker) if marker else None
    if cut is not None and not _QUOTED.match(lines[cut]):
        # The client kept our mail unquoted below the reply: all of it, and the attribution
        # or header block that introduces it, is ours.
        start = _introduction(lines, cut)
        return _finish([_Segment(lines[:start])], lines[start:], inline=False, unsure=False)
    header = _header_start(lines, marker)
    if header is None:
        if not _quotes_an_original(lines, marker):
            # Nothing quoted that we can recognise: every line is the partner's.
            unsure = any(_QUOTED.match(line) for line in lines)
            return _finish([_Segment(lines)], [], inline=False, unsure=unsure)
        top, rest, history = [], lines, []  # our mail quoted with no attribution above it
    else:
        top = lines[:header]
        start, end = header, _header_end(lines, header)
        history = lines[start:end]
        rest = lines[end:]
        if _has_words(top) and not any(_QUOTED.match(line) for line in rest):
            # Below the attribution the original is not quoted line by line (Yahoo, HTML
            # mail): the partner wrote above it, and all of it is history.
            history, rest = lines[start:], []
    segments, quoted, inline = _segments(rest, marker)
    blocks = [_Segment(top), *segments]
    unsure = not _has_words(top) and bool(rest) and not any(_QUOTED.match(x) for x in rest)
    return _finish(blocks, history + quoted, inline=inline, unsure=unsure)


def _finish(blocks: list[_Segment], history: list[str], *, inline: bool, unsure: bool) -> Reply:
    """Join the blocks of new text, each answer with its context when the reply is inline;
    the signature and disclaimer closing the top text or the last answer are set aside."""
    for block in blocks:
        block.lines = _trimmed(block.lines)
    kept = [block for block in blocks if _has_words(block.lines)]
    signatures: list[str] = []
    disclaimers: list[str] = []
    closing = {id(kept[-1])} if kept else set()
    if kept and blocks[0] is kept[0]:
        closing.add(id(kept[0]))  # the top text closes with its own signature
    for block in kept:
        if id(block) not in closing:
            continue
        text, disclaimer = _split_disclaimer(block.lines)
        text, signature = _split_signature(text)
        block.lines = _trimmed(text)
        signatures.append(_joined(signature))
        disclaimers.append(_joined(disclaimer))
    kept = [block for block in kept if _has_words(block.lines)]
    shown = [_with_context(block, inline) for block in kept]
    return Reply(
        text="\n\n".join(_joined(lines) for lines in shown),
        signature="\n\n".join(s for s in signatures if s),
        quoted_context=any(len(lines) > len(b.lines) for lines, b in zip(shown, kept, strict=True)),
        disclaimer="\n\n".join(d for d in disclaimers if d),
        history=_joined(history),
        unsure=unsure,
    )


def _marker_line(lines: list[str], marker: str) -> int | None:
    for index, line in enumerate(lines):
        if _holds_marker(_QUOTE_MARKS.sub("", line), marker):
            return index
    return None


def _holds_marker(text: str, marker: str | None) -> bool:
    """Whether ``text`` carries our marker, whatever the case and spacing."""
    if not marker:
        return False
    return " ".join(marker.lower().split()) in " ".join(text.lower().split())


def _introduction(lines: list[str], cut: int) -> int:
    """Where our unquoted mail begins: its attribution or header block just above the
    marker, else the marker itself."""
    start = _header_start(lines[:cut], None)
    if start is not None:
        return start
    end = cut
    while end and not lines[end - 1].strip():
        end -= 1
    if end and _ENDS_IN_COLON.search(lines[end - 1]) and _DATE_OR_ADDRESS.search(lines[end - 1]):
        return end - 1
    return cut


def _quotes_an_original(lines: list[str], marker: str | None) -> bool:
    """Whether the quoted lines hold our mail (its marker or its wording)."""
    for line in lines:
        if not _QUOTED.match(line):
            continue
        text = _QUOTE_MARKS.sub("", line)
        if is_echo(text) or _holds_marker(text, marker):
            return True
    return False


def _header_start(lines: list[str], marker: str | None) -> int | None:
    """The first line of the first attribution, separator or header block."""
    for index, line in enumerate(lines):
        if _QUOTED.match(line) or not line.strip():
            continue
        if _separator(lines, index) or _from_block(lines, index):
            return index
        if _attribution_length(lines, index, marker, unknown="ours"):
            return index
    return None


def _header_end(lines: list[str], start: int) -> int:
    """Where the answers below an attribution may begin; an Outlook block or separator
    leaves none (the original below it is not quoted line by line)."""
    if _separator(lines, start) or _from_block(lines, start):
        return len(lines)
    length = _attribution_length(lines, start, None, unknown="any")
    return start + length if length else len(lines)


def _separator(lines: list[str], index: int) -> bool:
    """A separator line: a known one, or a dashed title or a line ending in a colon
    ("Początek przekazanej wiadomości:") with a header block right below it."""
    line = lines[index]
    if _SEPARATOR.match(line):
        return True
    if not (_DASHED.match(line) or _ENDS_IN_COLON.search(line)) or _HEADER_ANY.match(line):
        return False
    following = [i for i in range(index + 1, min(index + 4, len(lines))) if lines[i].strip()]
    return bool(following) and _from_block(lines, following[0])


def _from_block(lines: list[str], index: int) -> bool:
    """An Outlook-style header block starting here: header lines, one after another, one of
    them naming the sender ("From:", "Von:", "Oddi wrth:" …), whichever comes first (GMX
    and web.de start with the date)."""
    if not _HEADER_ANY.match(lines[index]):
        return False
    block = [lines[index]]
    for line in lines[index + 1 : index + 8]:
        if not line.strip():
            if len(block) > 1:
                break
            continue
        if not _HEADER_ANY.match(line):
            break
        block.append(line)
    senders = [line for line in block if _FROM_LINE.match(line)]
    if not senders:
        return False
    addressed = any("@" in line or "mailto:" in line.lower() for line in senders)
    return len(block) >= 3 or (len(block) >= 2 and addressed)


def _attribution_length(
    lines: list[str], index: int, marker: str | None, *, unknown: str = "none"
) -> int:
    """1 or 2 when an attribution (of that many lines) starts at ``index``, else 0.

    In a language we do not know, a dated line ending in a colon right above a quote is an
    attribution when ``unknown`` is "ours" and the quote is our own mail, or when it is
    "any" (the caller has already found the history to begin here)."""
    line = lines[index]
    for length, text in ((1, line), (2, _joined_pair(lines, index))):
        if text is None or _QUOTED.match(line):
            continue
        quote_follows = _quote_follows(lines, index + length)
        if _ATTRIBUTION.match(text) and (_DATE_OR_ADDRESS.search(text) or quote_follows):
            return length
        # A language we do not know: a dated line ending in a colon above our own mail.
        if (
            _ENDS_IN_COLON.search(text)
            and _DATE_OR_ADDRESS.search(text)
            and quote_follows
            and (
                unknown == "any"
                or (unknown == "ours" and _quote_is_ours(lines, index + length, marker))
            )
        ):
            return length
    return 0


def _joined_pair(lines: list[str], index: int) -> str | None:
    if index + 1 >= len(lines) or not lines[index + 1].strip() or _QUOTED.match(lines[index + 1]):
        return None
    return f"{lines[index]} {lines[index + 1].strip()}"


def _quote_follows(lines: list[str], index: int) -> bool:
    for line in lines[index:]:
        if line.strip():
            return bool(_QUOTED.match(line))
    return False


def _quote_is_ours(lines: list[str], index: int, marker: str | None) -> bool:
    block: list[str] = []
    for line in lines[index:]:
        if line.strip() and not _QUOTED.match(line):
            break
        block.append(line)
    return _quotes_an_original(block, marker)


def _segments(lines: list[str], marker: str | None) -> tuple[list[_Segment], list[str], bool]:
    """New text between quoted lines, each with the last quoted line above it; the quoted
    lines; and whether the reply is inline (a quote follows some new text)."""
    segments: list[_Segment] = []
    quoted: list[str] = []
    current: _Segment | None = None
    last_quote: str | None = None
    inline = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if _QUOTED.match(line):
            quoted.append(line)
            text = _QUOTE_MARKS.sub("", line).strip()
            if _holds_marker(text, marker):
                last_quote = None  # our marker is never context
            elif text:
                last_quote = text
            if current is not None and _has_words(current.lines):
                inline = True
            current = None
            index += 1
            continue
        if line.strip() and (_separator(lines, index) or _from_block(lines, index)):
            quoted.extend(lines[index:])  # a forwarded or Outlook original: all of it is history
            break
        # Below the first attribution only a known one counts: a partner's answer may well
        # end in a colon above the next quoted question.
        length = _attribution_length(lines, index, marker) if line.strip() else 0
        if length:
            quoted.extend(lines[index : index + length])
            current, last_quote = None, None
            index += length
            continue
        if current is None:
            if not line.strip():
                index += 1
                continue
            current = _Segment(context=last_quote)
            segments.append(current)
        current.lines.append(line)
        index += 1
    return [s for s in segments if _has_words(s.lines)], quoted, inline


def _with_context(segment: _Segment, inline: bool) -> list[str]:
    context = segment.context
    if not inline or context is None or _LINK.search(context) or is_echo(context):
        return segment.lines
    return [f"> {context}", *segment.lines]


def _split_disclaimer(lines: list[str]) -> tuple[list[str], list[str]]:
    """A trailing legal notice, one or more paragraphs, never the first paragraph."""
    paragraphs = _paragraph_starts(lines)
    cut = None
    for start in reversed(paragraphs[1:]):
        body = lines[start : _paragraph_end(lines, start)]
        if _is_disclaimer(body) or all(_DECORATION.match(x) for x in body if x.strip()):
            cut = start
            continue
        break
    if cut is None or not any(_is_disclaimer(lines[s : _paragraph_end(lines, s)])
                              for s in paragraphs if s >= cut):  # fmt: skip
        return lines, []
    return lines[:cut], lines[cut:]


def _paragraph_starts(lines: list[str]) -> list[int]:
    return [
        i for i, line in enumerate(lines) if line.strip() and (i == 0 or not lines[i - 1].strip())
    ]


def _paragraph_end(lines: list[str], start: int) -> int:
    end = start
    while end < len(lines) and lines[end].strip():
        end += 1
    return end


def _is_disclaimer(paragraph: list[str]) -> bool:
    """A legal notice (see ``mailwords``): a partner's own sentence about confidential
    data carries no notice's wording, or is short, and stays in the comment."""
    text = " ".join(line.strip() for line in paragraph)
    if _DISCLAIMER_OPENING.match(text):
        return True
    strong = sum(1 for cue in _DISCLAIMER_STRONG if cue.search(text))
    cues = strong + sum(1 for cue in _DISCLAIMER_CUES if cue.search(text))
    return cues >= 2 and (strong >= 1 or len(text.split()) >= _DISCLAIMER_WORDS)


def _split_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    words = [i for i, line in enumerate(lines) if line.strip()]
    for index in words:
        line = lines[index]
        if line in ("--", "-- ", "—", "-- —") or line.strip() == "--":
            return lines[:index], lines[index + 1 :]
        if (_SENT_FROM.match(line) or _OUTLOOK_APP.match(line)) and _contact_block(
            lines[index + 1 :]
        ):
            return lines[:index], lines[index:]
    for index in words[1:]:  # a valediction needs something above it to close
        if _VALEDICTION.match(lines[index]) and _contact_block(lines[index + 1 :]):
            return lines[:index], lines[index:]
    return lines, []


def _contact_block(lines: list[str]) -> bool:
    """A few short lines (name, role, organisation, telephone), nothing like prose."""
    filled = [line.strip() for line in lines if line.strip()]
    return len(filled) <= _CONTACT_LINES and all(len(line) <= _CONTACT_WIDTH for line in filled)


def _has_words(lines: list[str]) -> bool:
    return any(line.strip() for line in lines)


def _trimmed(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _joined(lines: list[str]) -> str:
    return "\n".join(_trimmed(lines))

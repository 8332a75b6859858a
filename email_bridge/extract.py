"""The new words in a reply: quotes, attributions and signatures cut away, in any client.

Why our own rules rather than a reply-parsing package: the ones on PyPI strip every line
(losing the indentation and list layout a DPIA answer needs) or take ``- item`` lists for
signatures. The cuts, in order:

1. our "reply above this line" marker, where the client kept it;
2. the first attribution or forwarded-header block (Gmail/Apple/Thunderbird "On … wrote:"
   and its German, French, Spanish, Italian, Dutch, Portuguese, Swedish and Polish forms,
   also wrapped over two lines; Outlook's ``From:/Sent:`` block in those languages and its
   ``-----Original Message-----`` and underscore separators);
3. if nothing was written above that point the reply is inline or bottom-posted: the answers
   are kept with up to three lines of the quote each one answers, for context;
4. the signature: ``-- ``, "Sent from my iPhone" and its kin, or a valediction followed by
   a short contact block. It is returned separately, not thrown away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTEXT_LINES = 3

_ATTRIBUTION = re.compile(
    r"^\s*(?:on|am|le|el|il|op|em|den|w dniu|dne)\b.{0,300}?"
    r"(?:wrote|schrieb|a\s+écrit|escribió|ha\s+scritto|schreef|escreveu|skrev|napisał|pisze|"
    r"napsal)\b.{0,160}:\s*$"
    r"|^\s*.{0,160}\b(?:wrote|schrieb|a\s+écrit|escribió|ha\s+scritto|schreef|escreveu|skrev)"
    r"\s*:\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:original\s+message|ursprüngliche\s+nachricht|message\s+d['\u2019]origine|"
    r"mensaje\s+original|messaggio\s+originale|oorspronkelijk\s+bericht|"
    r"mensagem\s+original|ursprungligt\s+meddelande|forwarded\s+message|"
    r"weitergeleitete\s+nachricht)\s*-{2,}|_{20,}|begin\s+forwarded\s+message:)\s*$",
    re.IGNORECASE,
)
_FROM_LINE = re.compile(r"^\s*[*]?(?:from|von|de|da|van|od|från|fra|frá)\s*[*]?\s*:", re.IGNORECASE)
_HEADER_LINE = re.compile(
    r"^\s*[*]?(?:sent|date|to|subject|cc|gesendet|datum|an|betreff|envoyé|date|à|objet|"
    r"enviado|fecha|para|asunto|inviato|data|a|oggetto|verzonden|aan|onderwerp|skickat|"
    r"till|ämne|wysłano|do|temat)\s*[*]?\s*:",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"^\s{0,3}>")
_LINK = re.compile(r"\b(?:https?|ftp)://|\bwww\.", re.IGNORECASE)
_SENT_FROM = re.compile(
    r"^\s*(?:sent\s+from\s+my\b|sent\s+from\s+(?:outlook|mail\s+for|yahoo)|get\s+outlook\s+for\b|"
    r"von\s+meinem\s+\S+\s+gesendet|gesendet\s+von\s+meinem\b|envoyé\s+de\s+mon\b|"
    r"enviado\s+desde\s+mi\b|inviato\s+da\b|verzonden\s+vanaf\s+mijn\b|"
    r"skickat\s+från\s+min\b|wysłane\s+z\b)",
    re.IGNORECASE,
)
_VALEDICTION = re.compile(
    r"^\s*(?i:(?:kind|best|warm|warmest|many)\s+(?:regards|wishes|thanks)|regards|"
    r"best|thanks|thank\s+you|many\s+thanks|cheers|yours\s+(?:sincerely|faithfully)|"
    r"all\s+the\s+best|mit\s+freundlichen\s+grüßen|mit\s+freundlichen\s+grüssen|"
    r"(?:viele|beste|liebe)\s+grüße|mfg|cordialement|bien\s+cordialement|bien\s+à\s+vous|"
    r"salutations|saludos|un\s+saludo|atentamente|cordiali\s+saluti|distinti\s+saluti|"
    r"met\s+vriendelijke\s+groet(?:en)?|groeten|med\s+vänlig\s+hälsning|"
    r"atenciosamente|pozdrawiam|z\s+poważaniem)\s*[,.!]?"
    # optionally the writer's name on the same line: up to three capitalised words
    r"(?:\s+[A-ZÀ-Ý][\w'.-]*(?:\s+[A-ZÀ-Ý][\w'.-]*){0,2})?\s*$"
)
_UNSUBSCRIBE = re.compile(
    r"^\W*(?:unsubscribe|stop|remove\s+me|abmelden|désabonner|se\s+désabonner|"
    r"darse\s+de\s+baja|cancella\s+iscrizione|afmelden)\W*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    signature: str
    quoted_context: bool

    @property
    def is_unsubscribe(self) -> bool:
        return bool(_UNSUBSCRIBE.fullmatch(self.text.strip()))


def extract(body: str, marker: str | None = None) -> Reply:
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if marker:
        cut = _marker_line(lines, marker)
        if cut is not None:
            above = _above_marker(lines, cut)
            # A quoted marker with nothing written above it: an inline or bottom-posted
            # reply, whose answers are below the marker; the rules below read it.
            if _has_words(above) or not _QUOTED.match(lines[cut]):
                lines = above
            else:
                lines = lines[:cut] + lines[cut + 1 :]  # never context itself
    header = _header_start(lines)
    if header is not None and _has_words(lines[:header]):
        part = lines[:header]
    elif header is not None:
        part = lines[_header_end(lines, header) :]
    else:
        part = lines
    kept, quoted_context = _answers(part)
    text, signature = _split_signature(kept)
    return Reply(_tidy(text), _tidy(signature), quoted_context)


def _marker_line(lines: list[str], marker: str) -> int | None:
    wanted = " ".join(marker.lower().split())
    for index, line in enumerate(lines):
        if wanted in " ".join(line.lower().lstrip("> ").split()):
            return index
    return None


def _above_marker(lines: list[str], cut: int) -> list[str]:
    """The lines above our marker, without the attribution that introduces the quote: a known
    one, or (the marker being quoted) the line ending in a colon just above the quote, which
    is how clients in languages without a rule (Japanese, Russian, ...) introduce it."""
    above = lines[:cut]
    header = _header_start(above)
    if header is not None:
        return above[:header]
    if _QUOTED.match(lines[cut]):
        end = len(above)
        while end and (not above[end - 1].strip() or _QUOTED.match(above[end - 1])):
            end -= 1
        if end and above[end - 1].rstrip().endswith((":", "\uff1a")):
            return above[: end - 1]
    return above


def _header_start(lines: list[str]) -> int | None:
    """The first line of the first attribution, separator or forwarded header block."""
    for index, line in enumerate(lines):
        if _QUOTED.match(line):
            continue
        if _SEPARATOR.match(line) or _ATTRIBUTION.match(line):
            return index
        if index + 1 < len(lines) and _ATTRIBUTION.match(f"{line} {lines[index + 1].strip()}"):
            return index
        if _FROM_LINE.match(line) and any(
            _HEADER_LINE.match(n) for n in lines[index + 1 : index + 5]
        ):
            return index
    return None


def _header_end(lines: list[str], start: int) -> int:
    """Where the answers of an inline reply begin: past the attribution (one or two lines)."""
    if _ATTRIBUTION.match(lines[start]):
        return start + 1
    if start + 1 < len(lines) and _ATTRIBUTION.match(f"{lines[start]} {lines[start + 1].strip()}"):
        return start + 2
    return len(lines)  # an Outlook block: everything below is the original


def _has_words(lines: list[str]) -> bool:
    return any(line.strip() and not _QUOTED.match(line) for line in lines)


def _answers(lines: list[str]) -> tuple[list[str], bool]:
    """Unquoted lines, each run preceded by the last lines of the quote it answers."""
    kept: list[str] = []
    quote: list[str] = []
    used_context = False
    for line in lines:
        if _QUOTED.match(line):
            text = re.sub(r"^(\s{0,3}>)+\s?", "", line).rstrip()
            # A quoted link is never context: our notification's links are personal
            # (read link, unsubscribe token) and the comment is read by everyone.
            if text and not _LINK.search(text):
                quote.append(text)
            continue
        if line.strip() and quote:
            if kept and kept[-1].strip():
                kept.append("")
            kept.extend(f"> {q}" for q in quote[-CONTEXT_LINES:])
            used_context = True
            quote = []
        elif line.strip() == "" and quote:
            continue  # a blank line inside or after a quote does not end it
        kept.append(line)
    if used_context and not any(line.strip() and not line.startswith("> ") for line in kept):
        used_context = False
    # A reply that only ever quoted (a forward without words) keeps nothing.
    return kept, used_context


def _split_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    for index, line in enumerate(lines):
        if line.rstrip() in ("--", "-- ", "—") or line == "-- ":
            return lines[:index], lines[index + 1 :]
        if _SENT_FROM.match(line):
            return lines[:index], lines[index:]
    words = [i for i, line in enumerate(lines) if line.strip()]
    for index in words[1:][-8:]:  # a valediction needs something above it to close
        if _VALEDICTION.match(lines[index]) and _contact_block(lines[index + 1 :]):
            return lines[:index], lines[index:]
    return lines, []


def _contact_block(lines: list[str]) -> bool:
    """A few short lines (name, role, organisation, telephone), nothing like prose."""
    filled = [line.strip() for line in lines if line.strip()]
    return len(filled) <= 7 and all(len(line) <= 80 for line in filled)


def _tidy(lines: list[str]) -> str:
    out: list[str] = []
    blank = 0
    for line in lines:
        line = line.rstrip()
        blank = blank + 1 if not line else 0
        if blank <= 1:
            out.append(line)
    return "\n".join(out).strip("\n")

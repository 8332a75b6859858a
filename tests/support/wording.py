"""Finding internal ids where people read words: the text of pages and emails.

The ids come from the template (its section ids) and the enums (roles, DPIA statuses,
section states and steps, decisions). Many are also English words ("need", "owner",
"review", "approved"), so a plain search would flag good sentences. A label leaks when:

- an id that no English sentence contains appears anywhere: one written with "_"
  (``in_review``, ``dpo_advice``), or ``dpo`` in lower case (people write "DPO");
- an English-looking id stands where a label would: first in an element's text in lower
  case (``<td>owner</td>``, ``<option>submit</option>``, "need is now submitted."), in
  parentheses ("Section signed off (need)"), a role after "as" ("You take part as
  commenter.") or a section after "changed" ("Priya Shah changed need in …").

Addresses (``https://…#need``) are not read as text. What is read: text nodes outside
``<script>``/``<style>``, and the ``title``, ``aria-label``, ``placeholder`` and ``alt``
attributes; for mail, every line of the plain text, the HTML's text, and the subject.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from html.parser import HTMLParser

from server.domain.access import Role
from server.domain.dpias import DpiaStatus, PartyRole
from server.domain.templates import load_template
from server.domain.workflow import Decision, SectionAction, SectionState


def internal_ids() -> set[str]:
    template = load_template()
    ids = set(template.section_ids())
    for vocabulary in (Role, DpiaStatus, SectionState, SectionAction, Decision, PartyRole):
        ids |= {member.value for member in vocabulary}
    return ids


_ADDRESS = re.compile(r"\S+://\S+|/dpias/\S+|[\w.+-]+@[\w.-]+")


def leaks(text: str, ids: set[str] | None = None) -> list[str]:
    """The ids ``text`` (one element's text, or one line) shows where a label belongs."""
    ids = internal_ids() if ids is None else ids
    roles = {r.value for r in Role}
    sections = set(load_template().section_ids())
    text = " ".join(_ADDRESS.sub(" ", text).split())
    found = []
    for name in sorted(ids):
        word = re.escape(name)
        patterns = [rf"^{word}(?![\w-])", rf"\({word}\)"]
        if "_" in name or name == "dpo":
            patterns.append(rf"(?<![\w-]){word}(?![\w-])")
        if name in roles:
            patterns.append(rf"\bas {word}(?![\w-])")
        if name in sections:
            patterns.append(rf"\bchanged {word}(?![\w-])")
        if any(re.search(pattern, text) for pattern in patterns):
            found.append(name)
    return found


# Elements whose text is read as one piece; inline ones (a, span, strong …) join their
# neighbours, so "3 sections<span> reviewed by Ann</span>" is one text.
_BLOCKS = {
    "p",
    "li",
    "td",
    "th",
    "dt",
    "dd",
    "option",
    "button",
    "label",
    "legend",
    "caption",
    "summary",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "title",
    "div",
    "section",
    "nav",
    "main",
    "header",
    "footer",
    "form",
    "table",
    "tr",
    "ul",
    "ol",
    "dl",
    "br",
    "select",
    "textarea",
    "optgroup",
    "body",
    "html",
    "head",
    "aside",
    "fieldset",
}


class _Text(HTMLParser):
    READ = ("title", "aria-label", "placeholder", "alt")

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._current: list[str] = []
        self._skip = 0

    def _flush(self) -> None:
        text = " ".join("".join(self._current).split())
        if text:
            self.parts.append(text)
        self._current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        if tag in _BLOCKS:
            self._flush()
        self.parts.extend(value for name, value in attrs if name in self.READ and value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        if tag in _BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._current.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def page_texts(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser.parts


def mail_texts(message: EmailMessage) -> list[str]:
    texts = [str(message["Subject"])]
    plain = message.get_body(("plain",))
    if plain is not None:
        texts += [line for line in plain.get_content().splitlines() if line.strip()]
    html = message.get_body(("html",))
    if html is not None:
        texts += page_texts(html.get_content())
    return texts


def leaks_in(texts: list[str], where: str) -> list[str]:
    """Each leak as "where: id in 'text'" (empty when every text is written for people)."""
    ids = internal_ids()
    return [f"{where}: {name} in {text[:120]!r}" for text in texts for name in leaks(text, ids)]

"""DPIA templates: versioned JSON files shared with the browser editor.

The format and where each field lives in the Y.Doc are in docs/document-model.md. Seeding
builds the first update of a new DPIA's document from its template, exactly once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from pycrdt import Doc, Map, XmlElement, XmlFragment, XmlText

DEFAULT_TEMPLATE = "uk-dpia"


@dataclass(frozen=True)
class Template:
    id: str
    version: int
    title: str
    content: dict[str, Any]

    @property
    def sections(self) -> list[dict[str, Any]]:
        sections: list[dict[str, Any]] = self.content["sections"]
        return sections

    def section_ids(self) -> list[str]:
        return [section["id"] for section in self.sections]


class UnknownTemplate(LookupError):
    pass


@cache
def load_template(template_id: str = DEFAULT_TEMPLATE) -> Template:
    """The template named ``template_id`` from ``server/domain/templates``."""
    if not template_id.replace("-", "").isalnum():
        raise UnknownTemplate(template_id)
    path = resources.files("server.domain").joinpath("templates", f"{template_id}.json")
    if not path.is_file():
        raise UnknownTemplate(template_id)
    content = json.loads(path.read_text(encoding="utf-8"))
    return Template(content["id"], int(content["version"]), content["title"], content)


@cache
def richtext_schema() -> dict[str, list[Any]]:
    path = resources.files("server.domain").joinpath("templates", "richtext-schema.json")
    schema: dict[str, list[Any]] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def seed_update(template: Template) -> bytes:
    """The first update of a DPIA created from ``template``."""
    doc: Doc[Any] = Doc()
    meta = doc.get("meta", type=Map)
    with doc.transaction():
        meta["template"] = template.id
        meta["template_version"] = template.version
    return doc.get_update()


def append_paragraphs(fragment: XmlFragment, paragraphs: list[str]) -> None:
    """Add plain paragraphs to a rich-text field, as the editor's schema names them."""
    for text in paragraphs:
        paragraph = XmlElement("paragraph")
        fragment.children.append(paragraph)
        node = XmlText()
        paragraph.children.append(node)
        node.insert(0, text)

"""Organisations' own templates: naming a new one, and what moving a DPIA from one version
of its template to another changes (docs/template-library.md). Pure rules, no I/O."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from server.domain.errors import InvalidInput
from server.domain.templates import MalformedTemplate, Template, check_template

MAX_TEMPLATE_BYTES = 512 * 1024
_SLUG = re.compile(r"[^a-z0-9]+")


def new_template_id(organisation_code: str, title: str) -> str:
    """``<organisation code>-<words of the title>``, lower case, at most 50 characters."""
    words = _SLUG.sub("-", title.lower()).strip("-")[:36].strip("-") or "template"
    return f"{organisation_code.lower()}-{words}"[:50].strip("-")


def check_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise InvalidInput("Enter a name for the template")
    if len(title) > 200:
        raise InvalidInput("The template's name must be 200 characters or fewer")
    return title


def derive(source: Template, template_id: str, version: int, title: str) -> dict[str, Any]:
    """A draft copy of ``source`` under a new id, version and title."""
    content = copy.deepcopy(source.content)
    content.update(id=template_id, version=version, title=title)
    return content


def parse_draft(text: str, template_id: str, version: int) -> dict[str, Any]:
    """The JSON an administrator wrote for a draft, checked as every template is; its id
    and version are the draft's whatever the text says. InvalidInput names the field."""
    if len(text.encode()) > MAX_TEMPLATE_BYTES:
        raise InvalidInput(f"The template must be {MAX_TEMPLATE_BYTES // 1024} KB or smaller")
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(
            f"The template is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}"
        ) from None
    if not isinstance(content, dict):
        raise InvalidInput("The template must be a JSON object, starting with {")
    content["id"], content["version"] = template_id, version
    try:
        check_template(content, template_id)
    except MalformedTemplate as error:
        raise InvalidInput(str(error)) from None
    return content


@dataclass
class TemplateChanges:
    """What moving a DPIA from ``old`` to ``new`` changes, in the new template's order."""

    sections_added: list[str] = field(default_factory=list)  # new titles
    sections_removed: list[str] = field(default_factory=list)  # old titles
    sections_renamed: list[tuple[str, str]] = field(default_factory=list)  # (old, new)
    fields_added: list[str] = field(default_factory=list)  # "section title: label"
    fields_removed: list[str] = field(default_factory=list)
    fields_renamed: list[tuple[str, str]] = field(default_factory=list)
    fields_rekinded: list[str] = field(default_factory=list)  # same id, another kind
    # section.field paths of answers whose field the new version lacks (kept, not shown)
    orphaned: list[str] = field(default_factory=list)

    @property
    def nothing(self) -> bool:
        return not any(
            (
                self.sections_added,
                self.sections_removed,
                self.sections_renamed,
                self.fields_added,
                self.fields_removed,
                self.fields_renamed,
                self.fields_rekinded,
            )
        )


def _fields(template: Template) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {
        f"{section['id']}.{f['id']}": (section, f)
        for section in template.sections
        for f in section["fields"]
    }


def template_changes(old: Template, new: Template, answered: set[str]) -> TemplateChanges:
    """Sections and fields added, removed (by id), renamed (same id, another title or
    label) and of another kind; ``answered`` are the paths with an answer in the DPIA, of
    which those the new version has no field for are listed as kept."""
    changes = TemplateChanges()
    old_sections = {s["id"]: s for s in old.sections}
    new_sections = {s["id"]: s for s in new.sections}
    for sid, section in new_sections.items():
        if sid not in old_sections:
            changes.sections_added.append(section["title"])
        elif old_sections[sid]["title"] != section["title"]:
            changes.sections_renamed.append((old_sections[sid]["title"], section["title"]))
    changes.sections_removed = [
        s["title"] for i, s in old_sections.items() if i not in new_sections
    ]
    old_fields, new_fields = _fields(old), _fields(new)
    for path, (section, spec) in new_fields.items():
        if path not in old_fields:
            if section["id"] in old_sections:
                changes.fields_added.append(f"{section['title']}: {spec['label']}")
        else:
            before = old_fields[path][1]
            if before["label"] != spec["label"]:
                changes.fields_renamed.append((before["label"], spec["label"]))
            if before["kind"] != spec["kind"]:
                changes.fields_rekinded.append(f"{section['title']}: {spec['label']}")
    for path, (section, spec) in old_fields.items():
        if path not in new_fields and section["id"] in new_sections:
            changes.fields_removed.append(f"{section['title']}: {spec['label']}")
    changes.orphaned = [
        path
        for path in old_fields
        if path in answered
        and (path not in new_fields or new_fields[path][1]["kind"] != old_fields[path][1]["kind"])
    ]
    return changes

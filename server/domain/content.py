"""The canonical content of a DPIA: what a signature binds, what history compares, what
JSON exports carry.

Canonical content is plain JSON built from the Y.Doc in template order: a rich-text field
is a list of nodes (``{"type", "attrs", "content"}``, text as ``{"text", "marks"}``), a
structured value is the value itself (``None`` when unset), a table is its list of rows
(each row every key of its ``Map``, the stable ``id`` included). Serialised with sorted keys
and no whitespace, two documents with the same visible content give the same bytes whatever
their CRDT histories, so its SHA-256 is a fair fingerprint of "what was signed".

A sign-off binds its target and everything the target depends on (``DEPENDS_ON``, the
cascade of dpia-model.md): a change to processing changes the bound content of risks, so
a sign-off of risks goes stale with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from pycrdt import Array, Doc, Map, XmlElement, XmlFragment, XmlText

from server.domain.access import Role
from server.domain.documents import root_names
from server.domain.dpias import DpiaStatus, locked_message
from server.domain.errors import AccessDenied, DpiaLocked, InvalidInput
from server.domain.templates import Template
from server.domain.verdicts import ALLOWED, Verdict, refused

Content = dict[str, dict[str, Any]]

# section → the sections whose change makes a sign-off of it stale (dpia-model.md rule 2).
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "necessity": ("processing",),
    "risks": ("processing",),
    "measures": ("risks",),
    "dpo_advice": ("risks",),
    "signoff": ("risks", "consultation"),
    "outcome": ("risks",),
}
WHOLE = "dpia"


def bound_sections(template: Template, target: str) -> list[str]:
    """The target section and, transitively, everything it depends on, in template order."""
    order = template.section_ids()
    if target == WHOLE:
        return order
    if target not in order:
        raise InvalidInput(f"This DPIA has no section {target[:40]!r}")
    found: set[str] = set()
    stack = [target]
    while stack:
        section = stack.pop()
        if section not in found:
            found.add(section)
            stack.extend(DEPENDS_ON.get(section, ()))
    return [s for s in order if s in found]


def split_target(target: str) -> tuple[str, str | None, str | None]:
    """``risks`` → (risks, None, None); ``risks.register:R2`` → (risks, register, R2)."""
    if ":" not in target:
        return target, None, None
    path, _, ref = target.partition(":")
    section, _, field = path.partition(".")
    return section, field or None, ref or None


def target_hash(template: Template, content: Content, target: str) -> str:
    """SHA-256 of what a sign-off of ``target`` binds: a section or the whole DPIA with its
    dependencies, or one row of a table (a risk, a measure) with its section's dependencies.
    A row that no longer exists hashes as ``null``, so its sign-off goes stale."""
    section, field, ref = split_target(target)
    if field is None:
        return content_hash(content, bound_sections(template, target))
    upstream = [s for s in bound_sections(template, section) if s != section]
    body = {s: content[s] for s in upstream}
    body[target] = find_row(content, section, field, ref)
    return hashlib.sha256(canonical(body)).hexdigest()


def find_row(content: Content, section: str, field: str, ref: str | None) -> Any:
    rows = content.get(section, {}).get(field)
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and ref in (row.get("ref"), row.get("id")):
            return row
    return None


def check_target(template: Template, content: Content, target: str) -> list[str]:
    """The sections a target lies in or depends on; InvalidInput for an unknown target."""
    section, field, ref = split_target(target)
    bound = bound_sections(template, section if field is not None else target)
    if field is not None:
        _, spec = find_field(template, f"{section}.{field}")
        if spec["kind"] != "table" or find_row(content, section, field, ref) is None:
            raise InvalidInput(f"This DPIA has no row {target[:60]!r}")
    return bound


def dependants(template: Template, section: str) -> list[str]:
    """Sections whose bound content includes ``section`` (itself included)."""
    return [s for s in template.section_ids() if section in bound_sections(template, s)]


def _text_runs(text: XmlText) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for chunk, attrs in text.diff():
        if not isinstance(chunk, str):
            continue  # embeds are not part of the editor's schema
        run: dict[str, Any] = {"text": chunk}
        if attrs:
            run["marks"] = {str(k): v for k, v in sorted(attrs.items())}
        runs.append(run)
    return runs


def _nodes(children: Iterable[Any]) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    for child in children:
        if isinstance(child, XmlText):
            nodes.extend(_text_runs(child))
        elif isinstance(child, XmlElement):
            node: dict[str, Any] = {"type": child.tag}
            attributes: Any = child.attributes  # pycrdt types it as a view without __iter__
            pairs: list[tuple[str, Any]] = list(attributes)
            attrs = {str(k): v for k, v in sorted(pairs)}
            if attrs:
                node["attrs"] = attrs
            node["content"] = _nodes(child.children)
            nodes.append(node)
    return nodes


def _plain(value: Any) -> Any:
    """A Y value as plain JSON-able Python."""
    if isinstance(value, Map):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, Array):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def field_value(
    doc: Doc[Any], section: str, field: dict[str, Any], roots: frozenset[str] | None = None
) -> Any:
    """A field's value as plain data; ``roots`` (``root_names(doc)``) saves reading them."""
    path = f"{section}.{field['id']}"
    if roots is None:
        roots = root_names(doc)
    if field["kind"] == "richtext":
        name = f"field:{path}"
        return _nodes(doc.get(name, type=XmlFragment).children) if name in roots else []
    if field["kind"] == "table":
        name = f"table:{path}"
        return _plain(doc.get(name, type=Array)) if name in roots else []
    if "values" not in roots:
        return None
    return _plain(doc.get("values", type=Map).get(path))


def section_content(
    doc: Doc[Any], template: Template, section_id: str, roots: frozenset[str] | None = None
) -> dict[str, Any]:
    if roots is None:
        roots = root_names(doc)
    for section in template.sections:
        if section["id"] == section_id:
            return {f["id"]: field_value(doc, section_id, f, roots) for f in section["fields"]}
    raise InvalidInput(f"This DPIA has no section {section_id[:40]!r}")


def document_content(doc: Doc[Any], template: Template) -> Content:
    roots = root_names(doc)
    return {s: section_content(doc, template, s, roots) for s in template.section_ids()}


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(content: Content, sections: Iterable[str]) -> str:
    """SHA-256 over the canonical content of ``sections`` (named, so order cannot hide)."""
    return hashlib.sha256(canonical({s: content[s] for s in sections})).hexdigest()


def is_empty(value: Any) -> bool:
    return value in (None, "", [], {}, False)


def section_is_empty(content: dict[str, Any]) -> bool:
    return all(is_empty(v) for v in content.values())


def changed_fields(before: Content, after: Content) -> list[str]:
    """``section.field`` paths whose canonical value differs, in template order."""
    return [
        f"{section}.{name}"
        for section, fields in after.items()
        for name, value in fields.items()
        if canonical(before.get(section, {}).get(name)) != canonical(value)
    ]


def plain_text(value: Any) -> str:
    """A readable one-string view of any field value (for diffs, exports, excerpts)."""
    if (
        isinstance(value, list)
        and value
        and isinstance(value[0], dict)
        and ("type" in value[0] or "text" in value[0])
    ):
        return "\n".join(_block_text(node) for node in value).strip()
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return "\n".join(
                "; ".join(f"{k}: {v}" for k, v in row.items() if k != "id" and not is_empty(v))
                for row in value
            )
        return ", ".join(map(str, value))
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _block_text(node: dict[str, Any]) -> str:
    if "text" in node:
        return str(node["text"])
    inner = node.get("content", [])
    joiner = "\n" if node.get("type") in ("bullet_list", "ordered_list", "list_item") else ""
    return joiner.join(_block_text(n) for n in inner)


# -- writing content back (import, restore) ----------------------------------------------


def _append_nodes(parent: XmlFragment | XmlElement, nodes: list[dict[str, Any]]) -> None:
    pending: XmlText | None = None
    for node in nodes:
        if "text" in node:
            if pending is None:
                pending = XmlText()
                parent.children.append(pending)
            # Append at the end as pycrdt measures it (UTF-8 inside a transaction), never
            # by counting Python characters: "é" is one character and two positions.
            pending.insert(len(pending), str(node["text"]), node.get("marks") or None)
            continue
        pending = None
        element = XmlElement(str(node["type"]))
        parent.children.append(element)
        for key, value in (node.get("attrs") or {}).items():
            element.attributes[str(key)] = value
        _append_nodes(element, list(node.get("content") or []))


def write_field(doc: Doc[Any], section: str, field: dict[str, Any], value: Any) -> None:
    """Make a field of ``doc`` hold ``value`` (canonical form), inside the caller's
    transaction. Rich text and tables are replaced whole: a restore is a new change."""
    path = f"{section}.{field['id']}"
    if field["kind"] == "richtext":
        fragment = doc.get(f"field:{path}", type=XmlFragment)
        while len(fragment.children):
            del fragment.children[0]
        _append_nodes(fragment, list(value or []))
    elif field["kind"] == "table":
        table = doc.get(f"table:{path}", type=Array)
        table.clear()
        for row in value or []:
            table.append(Map({str(k): v for k, v in row.items()}))
    else:
        values = doc.get("values", type=Map)
        if value is None:
            if path in values:
                del values[path]
        else:
            values[path] = value


def find_field(template: Template, path: str) -> tuple[str, dict[str, Any]]:
    section_id, _, field_id = path.partition(".")
    for section in template.sections:
        if section["id"] == section_id:
            for field in section["fields"]:
                if field["id"] == field_id:
                    return section_id, field
    raise InvalidInput(f"This DPIA has no field {path[:60]!r}")


def restore_policy(role: Role, status: DpiaStatus) -> Verdict:
    """May someone with ``role`` restore a field of a DPIA that is ``status`` from a past
    version? Restoring writes the content, as editing does: owners and editors, unlocked."""
    if status.is_locked:
        return refused(DpiaLocked(locked_message(status)))
    if not role.can_write:
        return refused(AccessDenied("Only owners and editors can restore a field"))
    return ALLOWED


def write_content(doc: Doc[Any], template: Template, content: Content) -> None:
    """Write every field present in ``content`` (import)."""
    for section in template.sections:
        fields = content.get(section["id"], {})
        for field in section["fields"]:
            if field["id"] in fields:
                write_field(doc, section["id"], field, fields[field["id"]])

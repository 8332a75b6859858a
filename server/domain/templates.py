"""DPIA templates: versioned JSON files shared with the browser editor.

The format and where each field lives in the Y.Doc are in docs/document-model.md. Seeding
builds the first update of a new DPIA's document from its template, exactly once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from pycrdt import Doc, Map, XmlElement, XmlFragment, XmlText

from server.domain.reviews import check_review_cycle

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


class MalformedTemplate(ValueError):
    """A template file that does not follow docs/document-model.md; the message names the
    template and the field at fault."""


FIELD_KINDS = frozenset(
    {"richtext", "text", "choice", "multichoice", "yesno", "date", "number", "table"}
)
COLUMN_KINDS = frozenset({"text", "longtext", "choice", "multichoice", "yesno", "date", "number"})
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


def check_template(content: Any, expected_id: str | None = None) -> None:
    """Raise MalformedTemplate unless ``content`` is a well-formed template: an id, a
    version and a title; sections with unique ids and titles; fields of known kinds with
    unique ids; choices with unique options; tables with unique columns of known kinds."""
    if not isinstance(content, dict):
        raise MalformedTemplate(f"Template {expected_id!r} is not a JSON object")
    name = str(content.get("id", expected_id))

    def fail(where: str, problem: str) -> MalformedTemplate:
        return MalformedTemplate(f"Template {name!r}, {where}: {problem}")

    for key, kind in (("id", str), ("title", str), ("version", int), ("sections", list)):
        if not isinstance(content.get(key), kind):
            raise fail("top level", f"{key!r} must be a {kind.__name__}")
    if expected_id is not None and content["id"] != expected_id:
        raise fail("top level", f"its id must be its file name, {expected_id!r}")
    if not content["sections"]:
        raise fail("top level", "it has no sections")
    tables = {
        f"{s.get('id')}.{f.get('id')}"
        for s in content["sections"]
        if isinstance(s, dict)
        for f in s.get("fields") or []
        if isinstance(f, dict) and f.get("kind") == "table"
    }
    scales = set((content.get("risk_matrix") or {}).keys())
    section_ids: set[str] = set()
    for number, section in enumerate(content["sections"], 1):
        if not isinstance(section, dict) or not _ID.match(str(section.get("id", ""))):
            raise fail(f"section {number}", "its id must be lower case letters, digits and _")
        sid = section["id"]
        if sid in section_ids:
            raise fail(f"section {sid!r}", "the id is used twice")
        section_ids.add(sid)
        if not isinstance(section.get("title"), str) or not section["title"]:
            raise fail(f"section {sid!r}", "it has no title")
        fields = section.get("fields")
        if not isinstance(fields, list) or not fields:
            raise fail(f"section {sid!r}", "it has no fields")
        field_ids: set[str] = set()
        for field in fields:
            fid = field.get("id") if isinstance(field, dict) else None
            if not isinstance(fid, str) or not _ID.match(fid):
                raise fail(
                    f"section {sid!r}", f"field id {fid!r} must be lower case letters, digits and _"
                )
            if fid in field_ids:
                raise fail(f"field {sid}.{fid}", "the id is used twice in its section")
            field_ids.add(fid)
            _check_field(field, f"field {sid}.{fid}", FIELD_KINDS, fail, tables, scales)
            if field["kind"] == "table":
                columns = field.get("columns")
                if not isinstance(columns, list) or not columns:
                    raise fail(f"field {sid}.{fid}", "a table needs columns")
                if not isinstance(field.get("row_prefix"), str) or not field["row_prefix"]:
                    raise fail(f"field {sid}.{fid}", "a table needs a row_prefix")
                column_ids: set[str] = set()
                for column in columns:
                    cid = column.get("id") if isinstance(column, dict) else None
                    where = f"column {sid}.{fid}.{cid}"
                    if not isinstance(cid, str) or not _ID.match(cid):
                        raise fail(where, "the id must be lower case letters, digits and _")
                    if cid in column_ids or cid in ("id", "ref"):
                        raise fail(where, "the id is used twice in its table (or is id or ref)")
                    column_ids.add(cid)
                    _check_field(column, where, COLUMN_KINDS, fail, tables, scales)
    kinds = {
        f"{s['id']}.{f['id']}": str(f["kind"]) for s in content["sections"] for f in s["fields"]
    }
    check_review_cycle(content, kinds, fail)
    if "risk_catalogue" in content:
        _check_catalogue(content, name)


def _check_field(
    field: dict[str, Any],
    where: str,
    kinds: frozenset[str],
    fail: Any,
    tables: set[str],
    scales: set[str],
) -> None:
    if field.get("kind") not in kinds:
        raise fail(where, f"kind {field.get('kind')!r} is not one of {', '.join(sorted(kinds))}")
    if not isinstance(field.get("label"), str) or not field["label"]:
        raise fail(where, "it has no label")
    for key in ("guidance",):
        if key in field and not isinstance(field[key], str):
            raise fail(where, f"{key!r} must be text")
    if field["kind"] in ("choice", "multichoice"):
        options = field.get("options")
        source = field.get("options_from")
        if not isinstance(options, list):
            raise fail(where, "a choice needs a list of options")
        if source is not None and source not in tables:
            raise fail(where, f"options_from {source!r} is not a table of this template")
        if not options and source is None:
            raise fail(where, "a choice needs at least one option")
        values: set[str] = set()
        for option in options:
            if not isinstance(option, dict) or not isinstance(option.get("value"), str):
                raise fail(where, "every option needs a text value")
            if not isinstance(option.get("label"), str) or not option["label"]:
                raise fail(where, f"option {option['value']!r} has no label")
            if option["value"] in values:
                raise fail(where, f"option {option['value']!r} is listed twice")
            values.add(option["value"])
        if "scale" in field and field["scale"] not in scales:
            raise fail(where, f"scale {field['scale']!r} is not in the risk matrix")


_CATALOGUE_ID = re.compile(r"^[a-z][a-z0-9-]*$")
_TESTS = ("is", "includes", "answered")


def template_fields(content: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every field a condition may name: ``section.field`` and, for a table's columns,
    ``section.table.column`` (docs/document-model.md, "Risk catalogue")."""
    found: dict[str, dict[str, Any]] = {}
    for section in content["sections"]:
        for field in section["fields"]:
            path = f"{section['id']}.{field['id']}"
            found[path] = field
            for column in field.get("columns") or [] if field["kind"] == "table" else []:
                found[f"{path}.{column['id']}"] = column
    return found


def register_of(content: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``section.field`` and spec of the risk register: the first table marked ``heatmap``."""
    for section in content["sections"]:
        for field in section["fields"]:
            if field["kind"] == "table" and field.get("heatmap"):
                return f"{section['id']}.{field['id']}", field
    return None


def _check_catalogue(content: dict[str, Any], name: str) -> None:
    """The ``risk_catalogue``: each entry's id, words, ratings on the template's risk
    matrix, suggested measures, and conditions naming the template's own fields and
    option values."""

    def fail(where: str, problem: str) -> MalformedTemplate:
        return MalformedTemplate(f"Template {name!r}, risk catalogue {where}: {problem}")

    catalogue = content["risk_catalogue"]
    if not isinstance(catalogue, list) or not catalogue:
        raise fail("", "it must be a list of at least one risk")
    register = register_of(content)
    matrix = content.get("risk_matrix")
    if register is None or not isinstance(matrix, dict):
        raise fail("", "the template needs a risk register (a table with heatmap) and a matrix")
    columns = {c["id"]: c for c in register[1]["columns"]}
    fields = template_fields(content)
    plan_path = columns.get("measures", {}).get("options_from")
    plan = {c["id"]: c for c in fields[plan_path].get("columns", [])} if plan_path else {}
    seen: set[str] = set()
    for number, entry in enumerate(catalogue, 1):
        rid = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(rid, str) or not _CATALOGUE_ID.match(rid):
            raise fail(f"entry {number}", "its id must be lower case letters, digits and -")
        where = f"entry {rid!r}"
        if rid in seen:
            raise fail(where, "the id is used twice")
        seen.add(rid)
        for key in ("title", "description"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise fail(where, f"it has no {key}")
        for scale in ("likelihood", "severity"):
            values = [str(p.get("value")) for p in matrix.get(scale) or []]
            if entry.get(scale) not in values:
                raise fail(
                    where,
                    f"{scale} {entry.get(scale)!r} is not on the matrix ({', '.join(values)})",
                )
        if "harm_type" in entry and not _is_option(columns.get("harm_type"), entry["harm_type"]):
            raise fail(where, f"harm_type {entry['harm_type']!r} is not an option of the register")
        measures = entry.get("measures")
        if not isinstance(measures, list) or not measures:
            raise fail(where, "it needs at least one suggested measure")
        for measure in measures:
            if not isinstance(measure, dict) or not str(measure.get("title") or "").strip():
                raise fail(where, "every suggested measure needs a title")
            if "type" in measure and not _is_option(plan.get("type"), measure["type"]):
                raise fail(where, f"measure type {measure['type']!r} is not an option of the plan")
        when = entry.get("when")
        if not isinstance(when, list) or not when:
            raise fail(where, "'when' must list at least one condition")
        for alternative in when:
            tests = alternative.get("all") if isinstance(alternative, dict) else None
            for test in tests if isinstance(tests, list) and tests else [alternative]:
                _check_condition(test, fields, where, fail)


def _is_option(spec: dict[str, Any] | None, value: Any) -> bool:
    return spec is not None and any(o["value"] == value for o in spec.get("options") or [])


def _check_condition(test: Any, fields: dict[str, dict[str, Any]], where: str, report: Any) -> None:
    def fail(problem: str) -> MalformedTemplate:
        error: MalformedTemplate = report(where, problem)
        return error

    if not isinstance(test, dict) or not isinstance(test.get("field"), str):
        raise fail("a condition must name a 'field' (or be {'all': [conditions]})")
    path = test["field"]
    spec = fields.get(path)
    if spec is None or spec["kind"] == "table":
        raise fail(f"condition on {path!r}: the template has no such field or column")
    given = [key for key in _TESTS if key in test]
    if len(given) != 1 or set(test) != {"field", given[0]}:
        raise fail(f"condition on {path!r}: it needs exactly one of {', '.join(_TESTS)}")
    value = test[given[0]]
    kind = spec["kind"]
    if given[0] == "answered":
        if value is not True:
            raise fail(f"condition on {path!r}: 'answered' must be true")
    elif given[0] == "includes":
        if kind != "multichoice" or not _is_option(spec, value):
            raise fail(
                f"condition on {path!r}: 'includes' needs a multichoice and one of its options"
            )
    elif kind == "yesno":
        if not isinstance(value, bool):
            raise fail(f"condition on {path!r}: a yes/no answer is true or false")
    elif kind == "choice":
        if not _is_option(spec, value):
            raise fail(f"condition on {path!r}: {value!r} is not one of its options")
    else:
        raise fail(f"condition on {path!r}: 'is' applies to a choice or a yes/no answer")


@cache
def _shipped(template_id: str) -> Template | None:
    """A template shipped as ``server/domain/templates/<id>.json``; None if there is none."""
    if not template_id.replace("-", "").isalnum():
        return None
    path = resources.files("server.domain").joinpath("templates", f"{template_id}.json")
    if not path.is_file():
        return None
    content = json.loads(path.read_text(encoding="utf-8"))
    check_template(content, template_id)
    return Template(content["id"], int(content["version"]), content["title"], content)


# Organisations' published template versions known to this process, by (id, version).
# A published version never changes (docs/template-library.md), so an entry is never stale:
# a process only ever lacks a version, and ``services.template_library`` fills it from the
# database before a DPIA's template is read.
_registered: dict[tuple[str, int], Template] = {}


def is_shipped(template_id: str) -> bool:
    return _shipped(template_id) is not None


def register_template(content: Any) -> Template:
    """Check an organisation's published template version and make it loadable here."""
    check_template(content)
    if is_shipped(str(content["id"])):
        raise MalformedTemplate(
            f"Template {content['id']!r}, top level: the id is a shipped template's"
        )
    template = Template(content["id"], int(content["version"]), content["title"], content)
    _registered[(template.id, template.version)] = template
    return template


def is_registered(template_id: str, version: int | None) -> bool:
    if is_shipped(template_id):
        return True
    if version is None:
        return any(key[0] == template_id for key in _registered)
    return (template_id, version) in _registered


def load_template(template_id: str = DEFAULT_TEMPLATE, version: int | None = None) -> Template:
    """The template ``template_id`` at ``version`` (None: its newest version here).

    A shipped template (``server/domain/templates``) has one version, its file's, and
    answers every version asked of it (a DPIA made before the file's last change reads the
    file as it is now, as before templates were data). An organisation's template answers
    only the published versions registered in this process."""
    shipped = _shipped(template_id)
    if shipped is not None:
        return shipped
    if version is not None:
        found = _registered.get((template_id, version))
        if found is None:
            raise UnknownTemplate(f"{template_id} version {version}")
        return found
    versions = [v for (i, v) in _registered if i == template_id]
    if not versions:
        raise UnknownTemplate(template_id)
    return _registered[(template_id, max(versions))]


def template_ids() -> list[str]:
    """Every template shipped in ``server/domain/templates`` (the rich-text schema aside)."""
    folder = resources.files("server.domain").joinpath("templates")
    return sorted(
        entry.name.removesuffix(".json")
        for entry in folder.iterdir()
        if entry.name.endswith(".json") and entry.name != "richtext-schema.json"
    )


def assessment_templates() -> list[Template]:
    """The shipped templates a new DPIA can be made from: those with a risk register (the
    default first), as opposed to a project's other step documents."""
    found = [load_template(t) for t in template_ids()]
    found = [t for t in found if register_of(t.content) is not None]
    return sorted(found, key=lambda t: (t.id != DEFAULT_TEMPLATE, t.title))


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

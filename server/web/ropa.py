"""An organisation's record of processing activities: the page (filterable, searchable),
one entry's page (every column; confirm an entry drawn from a DPIA, edit one added by
hand), a new entry, and the CSV and JSON exports. Its administrators and DPOs keep it
(``domain.ropa.keeper_policy``); anyone else is refused."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.domain import wording
from server.domain.errors import InvalidInput
from server.domain.ropa import COLUMNS, EDITABLE
from server.services.ropa import Register, as_csv, as_json
from server.web.context import UserRequest, user_page
from server.web.rendering import field, form, page

STATES = tuple(wording.ROPA_STATES.items())
SOURCES = (("dpia", "From a DPIA"), ("hand", "Added by hand"))
# What the page's table shows of each entry (the entry's own page shows every column).
SUMMARY = ("reference", "activity", "purposes", "lawful_basis")


def _filters(context: UserRequest) -> dict[str, str]:
    params = context.request.query_params
    q = (params.get("q") or "")[:100]
    source = params.get("source") or ""
    state = params.get("state") or ""
    return {
        "q": q,
        "source": source if source in dict(SOURCES) else "",
        "state": state if state in wording.ROPA_STATES else "",
    }


def _base(code: str) -> str:
    return f"/organisations/{quote(code)}/ropa"


@user_page
async def chooser(context: UserRequest) -> Response:
    """``/ropa``: the record of the one organisation the person keeps, or a choice."""
    kept = await context.runtime.ropa.kept_by(context.user)
    if len(kept) == 1:
        return RedirectResponse(_base(kept[0].code), status_code=303)
    return page(context.request, "ropa_choose.html", kept=kept)


@user_page
async def register_page(context: UserRequest) -> Response:
    code = context.request.path_params["code"]
    register = await context.runtime.ropa.register(context.user, code)
    filters = _filters(context)
    entries = register.filtered(**filters)
    query = urlencode({k: v for k, v in filters.items() if v})
    return page(
        context.request,
        "ropa.html",
        register=register,
        entries=entries,
        base=_base(register.organisation.code),
        query=query,
        states=STATES,
        sources=SOURCES,
        summary=[c for c in COLUMNS if c.id in SUMMARY],
        q=filters["q"],
        source=filters["source"],
        state=filters["state"],
    )


def _export(register: Register, context: UserRequest, kind: str) -> Response:
    entries = register.filtered(**_filters(context))
    name = f"ropa-{register.organisation.code}"
    if kind == "csv":
        return Response(
            as_csv(entries),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        json.dumps(as_json(register, entries), indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="{name}.json"'},
    )


@user_page
async def export_csv(context: UserRequest) -> Response:
    register = await context.runtime.ropa.register(
        context.user, context.request.path_params["code"]
    )
    return _export(register, context, "csv")


@user_page
async def export_json(context: UserRequest) -> Response:
    register = await context.runtime.ropa.register(
        context.user, context.request.path_params["code"]
    )
    return _export(register, context, "json")


async def _values(context: UserRequest) -> dict[str, str]:
    data = await form(context.request)
    return {column: field(data, column, 4000) for column in EDITABLE}


@user_page
async def new_entry(context: UserRequest) -> Response:
    ropa, code = context.runtime.ropa, context.request.path_params["code"]
    keeper = await ropa.keeper(context.user, code)
    values: dict[str, str] = {}
    error = ""
    if context.request.method == "POST":
        values = await _values(context)
        try:
            key = await ropa.add(context.user, code, values)
        except InvalidInput as problem:
            error = str(problem)
        else:
            return RedirectResponse(
                f"{_base(keeper.code)}/entries/{quote(key, safe='')}?saved=1", status_code=303
            )
    return page(
        context.request,
        "ropa_entry_form.html",
        status_code=400 if error else 200,
        organisation=keeper,
        base=_base(keeper.code),
        columns=[c for c in COLUMNS if c.editable],
        values=values,
        error=error,
        action=f"{_base(keeper.code)}/new",
        heading="Add an entry",
    )


@user_page
async def entry_page(context: UserRequest) -> Response:
    ropa, code = context.runtime.ropa, context.request.path_params["code"]
    key = context.request.path_params["key"]
    keeper, entry = await ropa.entry(context.user, code, key)
    base = _base(keeper.code)
    here = f"{base}/entries/{quote(key, safe='')}"
    error = ""
    if context.request.method == "POST":
        if entry.hand_id is None:
            await form(context.request)  # the CSRF token is checked by the middleware
            await ropa.confirm(context.user, code, key)
            return RedirectResponse(f"{here}?confirmed=1", status_code=303)
        values = await _values(context)
        try:
            await ropa.edit(context.user, code, key, values)
        except InvalidInput as problem:
            error = str(problem)
        else:
            return RedirectResponse(f"{here}?saved=1", status_code=303)
        return page(
            context.request,
            "ropa_entry_form.html",
            status_code=400,
            organisation=keeper,
            base=base,
            columns=[c for c in COLUMNS if c.editable],
            values=values,
            error=error,
            action=here,
            heading=f"Edit {entry.values['reference']}",
        )
    params = context.request.query_params
    editing = entry.hand_id is not None and params.get("edit") == "1"
    if editing:
        return page(
            context.request,
            "ropa_entry_form.html",
            organisation=keeper,
            base=base,
            columns=[c for c in COLUMNS if c.editable],
            values=entry.values,
            error="",
            action=here,
            heading=f"Edit {entry.values['reference']}",
        )
    return page(
        context.request,
        "ropa_entry.html",
        organisation=keeper,
        base=base,
        here=here,
        entry=entry,
        columns=COLUMNS,
        confirmed=params.get("confirmed") == "1",
        saved=params.get("saved") == "1",
    )


routes = [
    Route("/ropa", chooser),
    Route("/organisations/{code}/ropa", register_page),
    Route("/organisations/{code}/ropa.csv", export_csv),
    Route("/organisations/{code}/ropa.json", export_json),
    Route("/organisations/{code}/ropa/new", new_entry, methods=["GET", "POST"]),
    Route("/organisations/{code}/ropa/entries/{key:path}", entry_page, methods=["GET", "POST"]),
]

"""The searchable library: ``/search`` (a page) and ``/api/search`` (JSON), over the text of
every document the signed-in person takes part in, with filters.

Both read the same query parameters: ``q`` (words, all of which must match), ``status``,
``template``, ``organisation`` (the lead organisation's id), ``review`` (``overdue``,
``soon``, ``none``) and ``page``. A bad filter is a 400 that says which; no query text can
fail (``domain.search``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.domain.dpias import DpiaStatus
from server.domain.search import PAGE_SIZE, ReviewDue, SearchQuery, parse_query
from server.domain.templates import load_template, template_ids
from server.services.search import SearchResult
from server.web.context import UserRequest, user_api, user_page
from server.web.rendering import page


def _query(request: Request) -> SearchQuery:
    params = request.query_params
    return parse_query(
        params.get("q", ""),
        status=params.get("status", ""),
        template=params.get("template", ""),
        organisation=params.get("organisation", ""),
        review=params.get("review", ""),
        page=params.get("page", ""),
        statuses=[s.value for s in DpiaStatus],
        templates=template_ids(),
    )


@user_page
async def search_page(context: UserRequest) -> Response:
    request, runtime = context.request, context.runtime
    params = request.query_params
    query = _query(request)
    found = await runtime.search.search(context.user, query)
    templates, organisations = await runtime.search.choices(context.user)
    return page(
        request,
        "search.html",
        q=params.get("q", "")[:200],
        query=query,
        found=found,
        page_size=PAGE_SIZE,
        statuses=list(DpiaStatus),
        templates=[(t, _title(t)) for t in templates],
        organisations=organisations,
        reviews=list(ReviewDue),
        next_page=_page_link(request, query.page + 1) if found.more else "",
        previous_page=_page_link(request, query.page - 1) if query.page > 1 else "",
    )


@user_api
async def search_api(context: UserRequest) -> Response:
    query = _query(context.request)
    found = await context.runtime.search.search(context.user, query)
    return JSONResponse(
        {
            "results": [_json(result) for result in found.results],
            "page": query.page,
            "more": found.more,
        }
    )


def _json(result: SearchResult) -> dict[str, Any]:
    return {
        "id": result.document_id,
        "title": result.title,
        "kind": result.kind.value,
        "status": result.status.value,
        "template": result.template_id,
        "lead_organisation": result.lead_organisation,
        "project": result.project_id,
        "next_review": result.next_review.isoformat() if result.next_review else None,
        # The passage as text, and which runs of it matched: a client escapes it as text.
        "passage": "".join(text for text, _ in result.passage),
        "passage_runs": [{"text": text, "match": hit} for text, hit in result.passage],
        "url": f"/dpias/{result.document_id}",
    }


def _page_link(request: Request, number: int) -> str:
    """This search's address at another page (a local path, never another host)."""
    params = {**request.query_params, "page": str(number)}
    return "/search?" + request.url.replace_query_params(**params).query


def _title(template_id: str) -> str:
    try:
        return load_template(template_id).title
    except Exception:
        return template_id


routes = [
    Route("/search", search_page),
    Route("/api/search", search_api),
]

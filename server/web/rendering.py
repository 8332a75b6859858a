"""What every handler answers with: a page (Jinja2), an error page, a JSON error; and the
limits on what it reads (forms, JSON bodies)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.templating import Jinja2Templates

from server.domain import wording
from server.domain.errors import DomainError, InvalidInput, TooManyAttempts
from server.domain.inputs import parse_json
from server.services.reports import RECORD_TEMPLATES
from server.web.errors import http_status_for

# The web's own templates, then the record's macros it shares with the PDF export.
templates = Jinja2Templates(directory=[Path(__file__).parent / "templates", RECORD_TEMPLATES])


def editor_built(request: Request) -> bool:
    """Whether the editor bundle exists (a checkout without ``make setup`` has none)."""
    runtime: Any = request.state.runtime
    return bool((runtime.settings.editor_bundle / "editor.js").is_file())


templates.env.globals["editor_built"] = editor_built
# The one catalogue of words people read (labels of ids, section titles): every template
# names a role, status, decision or section through it, never by its id.
templates.env.globals["words"] = wording
MAX_JSON = 64 * 1024
T = TypeVar("T")


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    csrf = request.scope.get("csrftoken")
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("unread", getattr(request.state, "unread", 0))
    return templates.TemplateResponse(
        request, name, {"csrftoken": csrf() if csrf else "", **context}, status_code=status_code
    )


def render_error(request: Request, error: DomainError) -> Response:
    status = http_status_for(error)
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, TooManyAttempts) else {}
    response = page(request, "error.html", status, message=str(error), status=status)
    response.headers.update(headers)
    return response


def json_error(error: DomainError) -> JSONResponse:
    return JSONResponse({"error": str(error)}, status_code=http_status_for(error))


async def form(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=50, max_part_size=64 * 1024)


def field(data: FormData, name: str, maximum: int = 1000) -> str:
    value = data.get(name, "")
    if not isinstance(value, str):
        raise InvalidInput(f"The form field {name!r} must be text")
    if len(value) > maximum:
        raise InvalidInput(f"The form field {name!r} is longer than {maximum} characters")
    return value


async def read_json(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise InvalidInput("Send a JSON body with Content-Type: application/json")
    body = await request.body()
    if len(body) > MAX_JSON:
        raise InvalidInput(f"The body is larger than {MAX_JSON // 1024} KiB")
    try:
        data = parse_json(body)
    except ValueError:
        raise InvalidInput("The body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object")
    return data


def json_value(data: dict[str, Any], key: str, kind: type[T], problem: str) -> T:
    """``data[key]`` if it is a ``kind``; otherwise InvalidInput saying ``problem``."""
    value = data.get(key)
    if not isinstance(value, kind):
        raise InvalidInput(problem)
    return value

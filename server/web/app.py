"""The Starlette application: routes, middleware, static files, around a runtime."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from asgi_csrf import asgi_csrf
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from server.metrics import CONNECTIONS, OUTBOX_DEPTH, ROOMS
from server.settings import Settings
from server.storage.database import DATABASE_ERRORS
from server.web import (
    admin,
    api,
    devmail,
    feed,
    inbound,
    pages,
    passwords,
    projects,
    projects_signoff,
    protection,
    public,
    review,
    reviews,
    risk_proposals,
    ropa,
    search,
    signin,
    sources,
    template_library,
)
from server.web.collab import CollaborationEndpoint
from server.web.middleware import BodyLimit, RequestIds, SecurityHeaders
from server.web.runtime import Runtime

STATIC = Path(__file__).parent / "static"
EDITOR_NOT_BUILT = (
    "The editor bundle is not built. Build it with `make setup` in the OpenDPIA checkout "
    "(or `npm ci && npm run build` in frontend/), or point OPENDPIA_EDITOR_DIR at a built one."
)


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers (a load balancer restarts it when it does not)."""
    runtime: Runtime = request.state.runtime
    return JSONResponse({"status": "ok", "rooms": len(runtime.rooms.rooms)})


async def readyz(request: Request) -> JSONResponse:
    """Readiness: the database and the bus answer; 503 (take me out of rotation) if not."""
    runtime: Runtime = request.state.runtime
    checks = await runtime.health.readiness()
    ready = all(state == "ok" for state in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503
    )


async def metrics(request: Request) -> Response:
    """Prometheus text format; the current-state gauges are read now."""
    runtime: Runtime = request.state.runtime
    rooms = runtime.rooms.rooms
    ROOMS.set(len(rooms))
    CONNECTIONS.set(sum(len(room.peers) for room in rooms.values()))
    with contextlib.suppress(Exception):  # the database being down is /readyz's business
        OUTBOX_DEPTH.set(await runtime.health.outbox_depth())
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class EditorBundle:
    """The built editor's files; while it is not built, a 404 that says how to build it
    (Starlette's StaticFiles raises, a 500, for a directory that does not exist)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files = StaticFiles(directory=directory, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.directory.is_dir():
            await PlainTextResponse(EDITOR_NOT_BUILT, status_code=404)(scope, receive, send)
            return
        await self.files(scope, receive, send)


def make_app(
    open_runtime: Callable[[], AbstractAsyncContextManager[Runtime]], settings: Settings
) -> Starlette:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Runtime]]:
        async with open_runtime() as runtime:
            _app.state.runtime = runtime
            yield {"runtime": runtime}

    def csrf(app: ASGIApp) -> ASGIApp:
        protected: ASGIApp = asgi_csrf(
            app,
            signing_secret=settings.secret_key,
            always_protect={"/login", passwords.FORGOT_PATH},
            cookie_secure=settings.env == "production",
            cookie_samesite="Lax",
            # asgi-csrf cannot parse multipart bodies with the python-multipart we use; the
            # one upload form checks the same double-submitted token itself (review.py).
            skip_if_scope=review.checks_its_own_csrf,
        )
        return protected

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            WebSocketRoute("/ws/dpia/{dpia_id}", CollaborationEndpoint()),
            *review.routes,
            *reviews.routes,
            *sources.routes,
            *risk_proposals.routes,
            *projects_signoff.routes,
            *pages.routes,
            *projects.routes,
            *search.routes,
            *passwords.routes,
            *signin.routes,
            *protection.routes,
            *api.routes,
            *devmail.routes,
            *admin.routes,
            *ropa.routes,
            *template_library.routes,
            *(devmail.development_routes if settings.env == "development" else []),
            *feed.routes,
            *public.routes,
            *inbound.routes,
            Mount("/static/editor", EditorBundle(settings.editor_bundle)),
            Mount("/static", StaticFiles(directory=STATIC)),
        ],
        middleware=[
            Middleware(RequestIds),
            Middleware(SecurityHeaders),
            Middleware(BodyLimit, paths=review.import_body_limits(settings)),
            Middleware(csrf),
        ],
        exception_handlers={
            404: public.not_found,
            500: public.server_error,
            **{kind: public.database_unavailable for kind in DATABASE_ERRORS},
        },
        lifespan=lifespan,
    )

"""Routes, and the Starlette application around a runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from server.web.collab import CollaborationEndpoint
from server.web.runtime import Runtime


async def healthz(request: Request) -> JSONResponse:
    runtime: Runtime = request.state.runtime
    return JSONResponse({"status": "ok", "rooms": len(runtime.rooms.rooms)})


def make_app(open_runtime: Callable[[], AbstractAsyncContextManager[Runtime]]) -> Starlette:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, Runtime]]:
        async with open_runtime() as runtime:
            _app.state.runtime = runtime
            yield {"runtime": runtime}

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            WebSocketRoute("/ws/dpia/{dpia_id}", CollaborationEndpoint()),
        ],
        lifespan=lifespan,
    )

"""The ASGI application: routes for the UAPI (under both prefixes), OAuth, and the control API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from calls.uapi.wire import API_PREFIXES, TOKEN_PATH

from . import api, control
from .engine import Emulator
from .faults import FaultMiddleware
from .profiles import DEFAULT_VOIPNOW

ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]


class StripTrailingSlash:
    """The docs write some UAPI URLs with a trailing slash (``.../extensionNumber/?...``);
    answer them as without, instead of redirecting."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = dict(scope, path=path.rstrip("/") or "/")
        await self.app(scope, receive, send)


def uapi_routes(prefix: str) -> list[BaseRoute]:
    calls = f"{prefix}/phoneCalls/{{userId}}/{{extension}}"
    exts = f"{prefix}/extensions/{{userId}}/{{extension}}"
    return [
        # Before the list route, which would take "simple" for an extension.
        Route(
            f"{prefix}/phoneCalls/{{userId}}/simple",
            api.create_simple_phone_calls,
            methods=["POST"],
        ),
        Route(calls, api.phone_calls, methods=ALL_METHODS),
        Route(f"{calls}/{{phoneCallId}}", api.phone_calls, methods=ALL_METHODS),
        Route(f"{exts}/phoneCallEvents", api.phone_call_events, methods=ALL_METHODS),
        Route(f"{exts}/phoneCallEvents/{{type}}", api.phone_call_events, methods=ALL_METHODS),
        Route(
            f"{exts}/phoneCallEvents/{{type}}/{{eventId}}",
            api.phone_call_events,
            methods=ALL_METHODS,
        ),
        Route(f"{exts}/queue/agents", api.queue_agents, methods=ALL_METHODS),
        Route(f"{exts}/queue/agents/{{agent}}", api.queue_agents, methods=ALL_METHODS),
        Route(f"{exts}/presence", api.presence, methods=ALL_METHODS),
        # List CDR; the trailing slash of /uapi/cdr/ is stripped before routing.
        Route(f"{prefix}/cdr", api.cdr, methods=ALL_METHODS),
        Route(f"{prefix}/cdr/{{ownerId}}", api.cdr, methods=ALL_METHODS),
        Route(prefix, api.not_implemented_endpoint, methods=ALL_METHODS),
        Route(f"{prefix}/{{rest:path}}", api.not_implemented_endpoint, methods=ALL_METHODS),
    ]


async def not_found(request: Request, exc: Exception) -> Response:
    return api.json_response(
        {"error": {"code": "not_found", "message": f"Nothing at {request.url.path}."}}, 404
    )


def create_app(
    scenario: dict[str, Any] | str | Path | None = None,
    *,
    seed: int | None = None,
    speed: float | None = None,
    traffic: bool = False,
    base_url: str | None = None,
    voipnow: int = DEFAULT_VOIPNOW,
) -> Starlette:
    """A VoipNow UAPI emulator as a Starlette app; ``app.state.emulator`` is its world.

    ``scenario``: a dict, a path to a JSON file, or None for the demo. ``seed`` and ``speed``
    override the scenario's. ``traffic=True`` starts random arrivals with the first request
    (no lifespan is needed, so it also works under ``httpx.ASGITransport``); servers usually
    call ``await app.state.emulator.start_traffic()`` instead. ``base_url`` fixes the
    scheme and host of links; by default they follow the request's Host. ``voipnow`` (3 or
    5) is the VoipNow version played (``profiles``); ValueError for another.
    """
    emulator = Emulator(scenario, seed=seed, speed=speed, base_url=base_url, voipnow=voipnow)
    routes: list[BaseRoute] = [Route(TOKEN_PATH, api.token, methods=ALL_METHODS)]
    for prefix in API_PREFIXES:
        routes.extend(uapi_routes(prefix))
    routes.extend(control.ROUTES)
    middleware = [Middleware(StripTrailingSlash), Middleware(FaultMiddleware, book=emulator.faults)]
    if traffic:
        middleware.insert(0, Middleware(LazyTraffic, emulator=emulator))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={404: not_found})
    app.state.emulator = emulator
    return app


class LazyTraffic:
    """Starts traffic on the loop that serves the first request."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.started and scope["type"] == "http":
            self.started = True
            await self.emulator.start_traffic()
        await self.app(scope, receive, send)

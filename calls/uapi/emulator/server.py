"""Serve the emulator over HTTP with uvicorn, traffic started on the server's own loop."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from .app import create_app
from .profiles import DEFAULT_VOIPNOW


async def serve(
    *,
    scenario: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8001,
    seed: int | None = None,
    speed: float | None = None,
    traffic: bool = True,
    log_level: str = "info",
    access_log: bool = False,
    voipnow: int = DEFAULT_VOIPNOW,
) -> None:
    """Run until interrupted (uvicorn handles SIGINT and SIGTERM)."""
    app = create_app(scenario, seed=seed, speed=speed, voipnow=voipnow)
    emulator = app.state.emulator
    # A line per request buries everything else (the dashboard polls every few seconds).
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="off", access_log=access_log
    )
    server = uvicorn.Server(config)
    if traffic:
        await emulator.start_traffic()
    try:
        await server.serve()
    finally:
        await emulator.stop()

"""The emulator's command-line options, shared by ``python -m calls.uapi.emulator`` and
``python manage.py uapi_emulator``, and the function that serves the emulator from them.

Nothing here imports the server's dependencies (starlette, uvicorn, the ``emulator`` extra)
until the server is started, so the management command loads in a dashboard installed
without them and says what to install.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from .profiles import DEFAULT_VOIPNOW, VERSIONS
from .world import DEMO_SCENARIO

SERVER_PACKAGES = frozenset({"starlette", "uvicorn"})
INSTALL_HINT = "pip install 'callboard[emulator]'"


class ServerUnavailable(RuntimeError):
    """A dependency of the emulator's server (the ``emulator`` extra) is not installed."""

    def __init__(self, package: str) -> None:
        super().__init__(
            f"The UAPI emulator's server needs {package}, which is not installed: {INSTALL_HINT}"
        )
        self.package = package


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser`` (an argparse or Django command parser)."""
    parser.add_argument("--scenario", default=str(DEMO_SCENARIO), help="scenario JSON file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--seed", type=int, default=None, help="override the scenario seed")
    parser.add_argument("--speed", type=float, default=None, help="time factor, 10 = 10x")
    parser.add_argument("--no-traffic", action="store_true", help="no random arrivals")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument(
        "--voipnow",
        type=int,
        choices=VERSIONS,
        default=DEFAULT_VOIPNOW,
        help=f"VoipNow version to behave as (default {DEFAULT_VOIPNOW})",
    )


def serve(options: Mapping[str, Any], announce: Callable[[str], None] | None = None) -> None:
    """Serve the emulator with ``options`` (parsed by a parser given ``add_arguments``) until
    interrupted; ``announce`` gets one line saying where, before the server starts.

    Raises ``ServerUnavailable`` when starlette or uvicorn is not installed.
    """
    try:
        from .server import serve as serve_app
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in SERVER_PACKAGES:
            raise
        raise ServerUnavailable(missing) from exc
    if announce is not None:
        announce(
            f"UAPI emulator on http://{options['host']}:{options['port']} "
            f"(VoipNow {options['voipnow']}, scenario {options['scenario']}, "
            f"traffic {'off' if options['no_traffic'] else 'on'})"
        )
    asyncio.run(
        serve_app(
            scenario=options["scenario"],
            host=options["host"],
            port=options["port"],
            seed=options["seed"],
            speed=options["speed"],
            traffic=not options["no_traffic"],
            access_log=options["access_log"],
            voipnow=options["voipnow"],
        )
    )

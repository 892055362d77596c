"""A stand-in VoipNow UAPI server: ``create_app()`` for the ASGI app, ``Emulator`` for its world."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .engine import Emulator

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["Emulator", "create_app"]


def __getattr__(name: str) -> Any:
    # The app needs starlette, which only the ``emulator`` extra installs: imported on first
    # use, so the engine and the command-line options load without it.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

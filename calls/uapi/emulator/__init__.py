"""A stand-in VoipNow UAPI server: ``create_app()`` for the ASGI app, ``Emulator`` for its world."""

from .app import create_app
from .engine import Emulator

__all__ = ["Emulator", "create_app"]

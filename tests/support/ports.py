"""Ports on 127.0.0.1."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it); returns its number."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, timeout: float = 0.2) -> bool:
    """True when something accepts connections on ``HOST:port``."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((HOST, port)) == 0

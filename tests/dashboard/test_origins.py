"""The websocket Origin check compares scheme, host and port, not the host alone."""

from __future__ import annotations

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from dashboard.asgi import application
from dashboard.origins import origin_allowed, parse_origin
from tests.dashboard.test_consumers import session_cookie

PUBLIC = "http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
def _site(settings: Any) -> None:
    settings.CALLBOARD_PUBLIC_URL = PUBLIC
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "callboard.example"]
    settings.CSRF_TRUSTED_ORIGINS = []


def scope(origin: str | None, host: str | None = None, scheme: str = "ws") -> dict[str, Any]:
    headers = []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if host is not None:
        headers.append((b"host", host.encode()))
    return {"type": "websocket", "scheme": scheme, "headers": headers}


@pytest.mark.parametrize(
    "origin",
    [
        "https://127.0.0.1:8000",  # same host and port, other scheme
        "http://127.0.0.1:8001",  # same host and scheme, other port
        "http://127.0.0.1",  # the default port is another port
        "http://localhost:8000",  # another host name, not the one configured
        "http://evil.example",
        "null",
        "",
        "http://127.0.0.1:8000/path",
        "http://user@127.0.0.1:8000",
        "ftp://127.0.0.1:8000",
    ],
)
def test_an_origin_that_differs_in_scheme_host_or_port_is_refused(origin: str) -> None:
    assert not origin_allowed(scope(origin))


def test_a_missing_origin_is_refused() -> None:
    assert not origin_allowed(scope(None))
    assert not origin_allowed(scope(None, host="127.0.0.1:8000"))


@pytest.mark.parametrize("origin", [PUBLIC, "HTTP://127.0.0.1:8000", "http://127.0.0.1:8000/"])
def test_the_public_urls_origin_is_accepted(origin: str) -> None:
    assert origin_allowed(scope(origin))


def test_behind_tls_the_public_https_origin_is_accepted_and_plain_http_refused(
    settings: Any,
) -> None:
    settings.CALLBOARD_PUBLIC_URL = "https://callboard.example"
    # The proxy speaks plain ws to daphne; the browser's page is https.
    assert origin_allowed(scope("https://callboard.example", host="callboard.example"))
    assert origin_allowed(scope("https://callboard.example:443", host="callboard.example"))
    assert not origin_allowed(scope("http://callboard.example", host="callboard.example:80"))
    assert not origin_allowed(scope("https://callboard.example:8443"))


def test_the_sockets_own_address_is_accepted_when_its_host_is_allowed() -> None:
    # manage.py demo --port 9000 with the public URL left at its default.
    assert origin_allowed(scope("http://localhost:9000", host="localhost:9000"))
    assert not origin_allowed(scope("http://localhost:9001", host="localhost:9000"))
    assert not origin_allowed(scope("https://localhost:9000", host="localhost:9000"))
    # Over TLS to daphne itself, the own origin is https.
    assert origin_allowed(scope("https://localhost:9000", host="localhost:9000", scheme="wss"))
    assert not origin_allowed(scope("http://localhost:9000", host="localhost:9000", scheme="wss"))
    # A Host header that is not one of ALLOWED_HOSTS vouches for nothing.
    assert not origin_allowed(scope("http://evil.example:9000", host="evil.example:9000"))


def test_csrf_trusted_origins_are_accepted_exactly(settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://floor.example", "https://*.example.org"]
    assert origin_allowed(scope("https://floor.example"))
    assert not origin_allowed(scope("http://floor.example"))
    assert not origin_allowed(scope("https://floor.example:8443"))
    assert not origin_allowed(scope("https://any.example.org"))


def test_parse_origin_fills_in_the_default_port() -> None:
    assert parse_origin("https://Callboard.Example") == ("https", "callboard.example", 443)
    assert parse_origin("http://[::1]:8000") == ("http", "::1", 8000)
    assert parse_origin("http://host:99999") is None


async def connects(user: User, path: str, origin: str | None) -> bool:
    from asgiref.sync import sync_to_async

    headers = [(b"cookie", await sync_to_async(session_cookie)(user))]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect()
    await comm.disconnect()
    return bool(connected)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        (PUBLIC, True),
        ("https://127.0.0.1:8000", False),
        ("http://127.0.0.1:8001", False),
        (None, False),
    ],
)
async def test_the_live_socket_opens_only_from_the_sites_origin(
    alice: User, origin: str | None, expected: bool
) -> None:
    assert await connects(alice, "/ws/calls/", origin) is expected

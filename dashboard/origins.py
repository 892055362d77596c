"""The websocket Origin check: a socket opens only from a page of this site.

A browser sends the Origin of the page that opens a socket, and sends the site's cookies with
it whatever that page is; the check is what keeps another site's page (or another port's, or
the same host over plain http) from opening a supervisor's socket with their session.

The rule: the Origin's scheme, host and port must be exactly those of

- ``CALLBOARD_PUBLIC_URL`` (the address people and VoipNow reach; behind a proxy that
  terminates TLS it is the https address the browser shows), or
- an entry of ``CSRF_TRUSTED_ORIGINS`` (``DJANGO_CSRF_TRUSTED_ORIGINS``) without a wildcard,
  the origins a POST is trusted from, or
- the socket's own address: the Host header, when its host is in ``ALLOWED_HOSTS``, with the
  scheme the site is served on: https when the connection is ``wss`` or when
  ``CALLBOARD_PUBLIC_URL`` is https (a proxy that terminates TLS speaks plain ``ws`` to daphne,
  and a site served on https has no page on http), http otherwise. This is Django's CSRF
  same-origin rule; it lets ``manage.py demo --port`` and a second host name work unconfigured.

A missing Origin, ``null``, or anything that is not ``http(s)://host[:port]`` is refused: a
browser always sends one, and what sends none is not a browser page we serve.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def parse_origin(value: str, *, bare: bool = True) -> Origin | None:
    """``(scheme, host, port)`` of an http(s) URL, the port filled in; None when it is not one.
    With ``bare`` (an Origin header), a path, query or user part also makes it None."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    extra = parts.path not in ("", "/") or parts.query or parts.fragment or parts.username
    if bare and extra:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin1")
    return None


def allowed_origins(scope: dict[str, Any]) -> set[Origin]:
    """The origins a socket with this scope may come from (see the module's docstring)."""
    public = parse_origin(settings.CALLBOARD_PUBLIC_URL, bare=False)
    trusted = [o for o in settings.CSRF_TRUSTED_ORIGINS if "*" not in o]
    allowed = {o for o in (parse_origin(t, bare=False) for t in trusted) if o}
    if public:
        allowed.add(public)
    host = _header(scope, b"host")
    if host:
        domain, _port = split_domain_port(host)
        if domain and validate_host(domain, settings.ALLOWED_HOSTS):
            secure = scope.get("scheme") == "wss" or (public is not None and public[0] == "https")
            scheme = "https" if secure else "http"
            own = parse_origin(f"{scheme}://{host}")
            if own:
                allowed.add(own)
    return allowed


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether the socket's Origin header is one of ``allowed_origins``."""
    value = _header(scope, b"origin")
    origin = parse_origin(value) if value is not None else None
    return origin is not None and origin in allowed_origins(scope)


class SameOriginOnly:
    """ASGI middleware for websockets: the inner application for an allowed Origin, a refusal
    (the handshake answered 403) otherwise."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)

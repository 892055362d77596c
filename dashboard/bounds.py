"""What the ASGI application accepts before it costs anything.

- Request bodies: at most ``CALLBOARD_MAX_BODY_BYTES``, on every HTTP route (the hook, a
  wrong hook path, Django's pages). ``BoundedInput`` answers 413 at once when Content-Length
  says more, and counts a body that streams without one (chunked), stopping at the limit.
  daphne, though, reads a whole body (Twisted keeps it in a temporary file) and then queues all
  of it for the application before the application runs: a 50 MB POST grew daphne by 51 MB
  whatever the application answered (measured: 79 to 130 MB RSS). ``bound_daphne_bodies``
  therefore applies the same limit inside daphne, as the headers arrive and as each chunk
  does, before anything is stored.
- Websocket messages from browsers: at most ``MAX_SOCKET_MESSAGE`` (64 KiB; Callboard's
  sockets expect nothing from the page). A larger one closes the socket with 4009 (the
  application's "message too big") before any consumer sees it. daphne can refuse them itself
  (``--websocket-max-message-size``; ``manage.py demo`` sets it); this check holds however
  daphne is started.
- Unknown websocket paths are refused without a traceback, and malformed static paths
  (``/static/../settings.py``) answer 404 rather than 500.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousOperation
from django.http import FileResponse, Http404, HttpRequest

log = logging.getLogger(__name__)

MAX_SOCKET_MESSAGE = 64 * 1024
# The close code for a message over the limit: RFC 6455's 1009 ("message too big") is the
# server's own to send (daphne's websocket library refuses it from an application), so the
# application says it in its private range, 4000-4999.
MESSAGE_TOO_BIG = 4009
# What daphne itself closes with when told the limit (``--websocket-max-message-size``).
SERVER_MESSAGE_TOO_BIG = 1009
# The denial-response extension of the ASGI websocket spec: a server that offers it lets an
# application answer a handshake with any HTTP status; others answer 403 to a close.
_DENIAL_EXTENSION = "websocket.http.response"

Scope = dict[str, Any]


async def _too_large(send: Any) -> None:
    body = b"Request body too large"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _counting(receive: Any, send: Any, limit: int) -> tuple[Any, Any]:
    """``receive`` and ``send`` for an application, counting the body as it streams: past
    ``limit`` bytes the application is told the client left, and the client is answered 413
    unless the application has begun its own answer (then it is cut short)."""
    received = 0
    refused = False
    started = False

    async def bounded_receive() -> dict[str, Any]:
        nonlocal received, refused
        if refused:
            return {"type": "http.disconnect"}
        message: dict[str, Any] = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                refused = True
                if not started:
                    await _too_large(send)
                return {"type": "http.disconnect"}
        return message

    async def guarded_send(message: dict[str, Any]) -> None:
        nonlocal started
        if refused:
            return
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    return bounded_receive, guarded_send


def _declared_length(scope: Scope) -> int | None:
    """The request's Content-Length; -1 when it is not one number."""
    values = {v.strip() for k, v in scope.get("headers", []) if k.lower() == b"content-length"}
    if not values:
        return None
    if len(values) > 1:
        return -1
    (value,) = values
    return int(value) if value.isdigit() and len(value) <= 20 else -1


def bounded(app: Any) -> BoundedInput:
    """``app`` behind BoundedInput, with daphne's own body limit in place."""
    bound_daphne_bodies()
    return BoundedInput(app)


class BoundedInput:
    """ASGI middleware bounding request bodies and websocket messages (module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Any, send: Any) -> None:
        limit: int = settings.CALLBOARD_MAX_BODY_BYTES
        declared = _declared_length(scope)
        if declared is not None and declared < 0:
            await _answer(send, 400, b"Bad Content-Length")
        elif declared is not None and declared > limit:
            await _too_large(send)
        else:
            await self.app(scope, *_counting(receive, send, limit))

    async def _websocket(self, scope: Scope, receive: Any, send: Any) -> None:
        closed = False

        async def bounded_receive() -> dict[str, Any]:
            nonlocal closed
            message: dict[str, Any] = await receive()
            if message["type"] == "websocket.receive" and _message_size(message) > (
                MAX_SOCKET_MESSAGE
            ):
                log.warning("websocket message over %d bytes: closing", MAX_SOCKET_MESSAGE)
                if not closed:
                    closed = True
                    await send({"type": "websocket.close", "code": MESSAGE_TOO_BIG})
                return {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if not closed:
                await send(message)

        await self.app(scope, bounded_receive, guarded_send)


def _message_size(message: dict[str, Any]) -> int:
    data = message.get("bytes")
    if data is not None:
        return len(data)
    text = message.get("text") or ""
    # A character is at most 4 bytes in UTF-8: count bytes only when it could matter.
    return len(text) if len(text) * 4 <= MAX_SOCKET_MESSAGE else len(text.encode())


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def unknown_socket(scope: Scope, receive: Any, send: Any) -> None:
    """The last websocket route: a path no consumer serves is refused, with 404 where the
    server offers the denial-response extension, else by closing before accepting (daphne
    answers that handshake with 403). Never an exception, so never a 500 with a traceback."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if _DENIAL_EXTENSION in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 404,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"Not found"})
        return
    await send({"type": "websocket.close"})


class StaticFiles(ASGIStaticFilesHandler):
    """Django's static files handler, with a path that cannot name a static file (``..``, a
    NUL, a name too long for the file system) answered 404: Django raises
    SuspiciousFileOperation or OSError there, which would be a 500."""

    def serve(self, request: HttpRequest) -> FileResponse:
        try:
            return super().serve(request)
        except (SuspiciousOperation, OSError, ValueError) as exc:
            raise Http404("No such static file.") from exc


# After refusing a body, daphne reads and drops what the client still sends for this long
# before it closes: closing a socket with unread data resets the connection, and a reset can
# destroy the 413 before the client reads it (the "lingering close" of nginx and Apache).
LINGER = 2.0
_REFUSAL = (
    b"HTTP/1.1 413 Content Too Large\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 22\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"Request body too large"
)


def bound_daphne_bodies() -> None:
    """Make daphne refuse a request body over ``CALLBOARD_MAX_BODY_BYTES`` as it arrives.

    daphne has no option for it: its Twisted request stores the whole body, then daphne
    queues all of it for the application at once. This subclasses daphne's request (the class
    its HTTP factory builds for each request, looked up when a connection is made) so that a
    Content-Length over the limit is answered 413 as soon as the headers are in, and a body
    without one (chunked) is counted chunk by chunk and answered 413 at the limit; nothing
    past the limit is stored. Does nothing when daphne is not installed; doing it twice is
    harmless.
    """
    try:
        from daphne import http_protocol
    except ImportError:  # another ASGI server: BoundedInput bounds what it passes on
        return
    if not getattr(http_protocol.WebRequest, "bounded_by_callboard", False):
        http_protocol.WebRequest = _bounded_request(http_protocol.WebRequest)


def _bounded_request(base: Any) -> Any:
    """A subclass of daphne's request that keeps no body over the limit (see above)."""

    class BoundedWebRequest(base):  # type: ignore[misc]
        bounded_by_callboard = True
        _refused = False
        _received = 0

        def gotLength(self, length: int | None) -> None:
            if length is not None and length > settings.CALLBOARD_MAX_BODY_BYTES:
                self._refuse()
                length = 0  # no temporary file for a body that is not kept
            super().gotLength(length)

        def handleContentChunk(self, data: bytes) -> None:
            if self._refused:
                return
            self._received += len(data)
            if self._received > settings.CALLBOARD_MAX_BODY_BYTES:
                self._refuse()
                return
            super().handleContentChunk(data)

        def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
            if not self._refused:
                super().requestReceived(command, path, version)

        def _refuse(self) -> None:
            # daphne has installed its reactor by now; importing it earlier would install
            # Twisted's default one in processes that are not daphne. (Typed as Any: Twisted
            # declares the reactor's methods on a zope interface, which mypy reads shifted.)
            from twisted.internet import reactor as installed

            clock: Any = installed
            self._refused = True
            # A client waiting for "100 Continue" gets the 413 instead and sends nothing.
            self.requestHeaders.removeHeader(b"expect")
            transport = self.channel.transport
            transport.write(_REFUSAL)
            transport.loseWriteConnection()
            clock.callLater(LINGER, transport.abortConnection)

    return BoundedWebRequest

"""Fault injection: make chosen UAPI requests slow, failing, hanging, cut off or garbled.

Faults sit in an ASGI middleware in front of every route except the control API. A fault
matches a path prefix (``/unifiedapi`` is treated as ``/uapi``) and optionally a method, and
may be limited to the next N matching requests.

Which faults reach the emulator's logic (so a PUT still rings a phone) and which do not:
``latency``, ``drop``, ``truncated``, ``garbled`` and ``corrupted`` run the request and then
delay or spoil its answer (the hard case for a client: it did happen, but the client cannot
tell);
``status``, ``timeout`` and ``malformed`` answer in place of the emulator, which never sees
the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from calls.uapi.wire import ErrorCode

from .errors import ControlError
from .model import dumps

if TYPE_CHECKING:
    # Types only: the fault book is part of the engine, which loads without starlette.
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

KINDS = ("latency", "status", "timeout", "drop", "malformed", "truncated", "garbled", "corrupted")
# timeout without "seconds" waits for the client to go away; this bound only keeps a
# forgotten request from living forever.
MAX_HANG_SECONDS = 3600.0
MALFORMED_BODY = b"<html><head><title>502 Proxy Error</title></head><body>Bad gateway</body>"
# What a PHP server (VoipNow's UAPI is PHP) prints ahead of its JSON when a notice slips out
# with display_errors on: the status and the action stand, the body is no longer JSON.
PHP_NOTICE = (
    b"<br />\n<b>Notice</b>:  Undefined index: nonce in <b>index.php</b> on line <b>42</b><br />\n"
)


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised after a partial answer so the server aborts the connection.

    It is an httpx transport error on purpose: with ``httpx.ASGITransport`` the app's
    exception reaches the client as is, so an in-process client sees the same kind of error as
    one talking to the real server (``RemoteProtocolError``: incomplete response)."""


def normalize(path: str) -> str:
    if path.startswith("/unifiedapi"):
        return "/uapi" + path[len("/unifiedapi") :]
    return path


@dataclass
class Fault:
    id: int
    path: str
    kind: str
    method: str | None = None
    seconds: float | None = None
    status: int | None = None
    times: int | None = None  # remaining matches; None = every matching request
    hits: int = 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "path": self.path, "kind": self.kind}
        for key, value in (
            ("method", self.method),
            ("seconds", self.seconds),
            ("status", self.status),
            ("times", self.times),
        ):
            if value is not None:
                data[key] = value
        data["hits"] = self.hits
        return data


@dataclass
class FaultBook:
    faults: list[Fault] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, spec: dict[str, Any]) -> Fault:
        """Validate a control API fault spec and keep it."""
        kind = spec.get("kind")
        path = spec.get("path", "/")
        if kind not in KINDS:
            raise ControlError(400, f"kind must be one of {', '.join(KINDS)}")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ControlError(400, "path must be a path prefix starting with /")
        method = spec.get("method")
        if method is not None and not isinstance(method, str):
            raise ControlError(400, "method must be a string")
        seconds = spec.get("seconds")
        if seconds is not None:
            try:
                seconds = float(seconds)
            except (TypeError, ValueError) as exc:
                raise ControlError(400, "seconds must be a number") from exc
            if seconds < 0:
                raise ControlError(400, "seconds must be >= 0")
        if kind == "latency" and seconds is None:
            raise ControlError(400, "latency needs seconds")
        status = spec.get("status")
        if kind == "status" and (not isinstance(status, int) or not 100 <= status <= 599):
            raise ControlError(400, "status needs an HTTP status code")
        times = spec.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ControlError(400, "times must be a positive integer")
        fault = Fault(
            id=next(self._ids),
            path=normalize(path),
            kind=kind,
            method=method.upper() if method else None,
            seconds=seconds,
            status=status if kind == "status" else None,
            times=times,
        )
        self.faults.append(fault)
        return fault

    def remove(self, fault_id: int | None = None) -> int:
        before = len(self.faults)
        if fault_id is None:
            self.faults.clear()
        else:
            self.faults = [f for f in self.faults if f.id != fault_id]
        return before - len(self.faults)

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, counting it against ``times``."""
        if not self.faults:
            return None
        path = normalize(path)
        for fault in self.faults:
            if fault.method not in (None, method) or not path.startswith(fault.path):
                continue
            fault.hits += 1
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
            return fault
        return None


def _error_code(status: int) -> str:
    if status in (401, 403):
        return ErrorCode.ACCESS_DENIED
    if status == 501:
        return ErrorCode.REQUEST_NOT_IMPLEMENTED
    return ErrorCode.INTERNAL_SERVER_ERROR


class FaultMiddleware:
    def __init__(self, app: ASGIApp, book: FaultBook) -> None:
        self.app = app
        self.book = book

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        fault = self.book.take(scope["method"], scope["path"])
        if fault is None:
            await self.app(scope, receive, send)
            return
        kind = fault.kind
        if kind == "latency":
            # A server has the whole request before it is slow to handle it: a client that
            # gives up meanwhile does not undo it (a late PUT still rings).
            receive = await _received(receive)
            await asyncio.sleep(fault.seconds or 0.0)
            await self.app(scope, receive, send)
        elif kind == "status":
            status = fault.status or 503
            body = dumps({"error": {"code": _error_code(status), "message": "Injected fault."}})
            await _answer(send, status, body, b"application/json")
        elif kind == "malformed":
            await _answer(send, 200, MALFORMED_BODY, b"application/json")
        elif kind == "timeout":
            await _hang(receive, fault.seconds)
            raise DroppedConnection("Server disconnected without sending a response.")
        else:
            status, headers, body = await _capture(self.app, scope, receive)
            cut = body[: len(body) // 2]
            if kind in ("garbled", "corrupted"):
                body = _garble(body) if kind == "garbled" else PHP_NOTICE + body
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
            elif kind == "truncated":
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(cut)).encode()))
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": cut})
            else:  # drop: a start line and part of the body, then the connection goes away
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": cut, "more_body": True})
                raise DroppedConnection("Server disconnected without sending a complete response.")


def _garble(body: bytes) -> bytes:
    """The first ``entry`` of a collection (either shape: the object, or the object wrapped
    in an array) without its ``id``: valid JSON, but not a call a client can use. Other
    bodies are answered unchanged."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    envelope = data[0] if isinstance(data, list) and len(data) == 1 else data
    entries = envelope.get("entry") if isinstance(envelope, dict) else None
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return body
    entries[0].pop("id", None)
    return dumps(data)


async def _answer(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _received(receive: Receive) -> Receive:
    """Read the request's body now; the returned ``receive`` hands it over again, then waits
    as the server's own does."""
    held: list[Message] = []
    while True:
        message = await receive()
        held.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break

    async def replay() -> Message:
        return held.pop(0) if held else await receive()

    return replay


async def _hang(receive: Receive, seconds: float | None) -> None:
    async def until_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    limit = MAX_HANG_SECONDS if seconds is None else seconds
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(until_disconnect(), limit)


async def _capture(
    app: ASGIApp, scope: Scope, receive: Receive
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    start: Message = {}
    chunks: list[bytes] = []

    async def keep(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, keep)
    return int(start.get("status", 200)), list(start.get("headers", [])), b"".join(chunks)

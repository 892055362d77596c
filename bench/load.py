"""A load process: many websocket clients on one asyncio loop, steered over stdin/stdout.

It is a separate process from the server and the driver, as browsers are. Commands come as
one JSON object a line on stdin, answers go as one JSON object a line on stdout:

- ``{"cmd": "connect", "url", "origin", "cookies": [...], "parse": true}``: open one client
  per cookie (``null`` for none), each waiting for its first message (the snapshot); answers
  the connect→first-message time of each client and the size of that message.
- ``{"cmd": "reset"}``: forget what arrived so far.
- ``{"cmd": "collect", "keys": [...], "deadline": <unix time>}``: wait until every client has
  every key or the deadline passes; answers, per key, the arrival times at the clients.
- ``{"cmd": "close"}``, ``{"cmd": "exit"}``.

A key is ``<call id>:<state>`` for a row (``waiting``, ``ringing``, ``talking``) and
``<call id>:gone`` for its removal; arrival times are ``time.time()``, the clock the driver
stamps its requests with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
from collections import defaultdict
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from bench.procs import raise_fd_limit

ROW = re.compile(r'<tr id="call-([^"]+)"([^>]*)>')
STATE = re.compile(r"\bstate-(\w+)")
# Daphne refuses a handshake the application has not accepted within 5 s
# (--websocket_connect_timeout); a gentler ramp keeps connecting clients under that.
CONNECT_CONCURRENCY = 16
CONNECT_TIMEOUT = 60.0


def keys_of(html: str) -> list[str]:
    """The change keys a fragment (or a snapshot) carries."""
    keys = []
    for call_id, attrs in ROW.findall(html):
        if 'hx-swap-oob="delete"' in attrs:
            keys.append(f"{call_id}:gone")
        else:
            state = STATE.search(attrs)
            keys.append(f"{call_id}:{state.group(1) if state else 'row'}")
    return keys


class Client:
    def __init__(self, index: int, parse: bool) -> None:
        self.index = index
        self.parse = parse
        self.seen: set[str] = set()
        self.ws: ClientConnection | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = False


class Load:
    def __init__(self) -> None:
        self.clients: list[Client] = []
        # key -> arrival times, one per client that received it (first arrival only)
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.changed = asyncio.Event()

    def record(self, client: Client, html: str, at: float) -> None:
        if not client.parse:
            return
        for key in keys_of(html):
            if key not in client.seen:
                client.seen.add(key)
                self.arrivals[key].append(at)
        self.changed.set()

    async def _listen(self, client: Client) -> None:
        assert client.ws is not None
        try:
            async for message in client.ws:
                at = time.time()
                if isinstance(message, str):
                    self.record(client, message, at)
        except Exception:  # noqa: BLE001 - however the socket ends, the report counts it closed
            pass
        finally:
            client.closed = True

    async def _open(
        self,
        client: Client,
        url: str,
        origin: str,
        cookie: str | None,
        gate: asyncio.Semaphore,
        until_rows: int = 0,
    ) -> dict[str, Any]:
        headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
        async with gate:
            started = time.perf_counter()
            try:
                ws = await connect(
                    url,
                    origin=Origin(origin),
                    additional_headers=headers,
                    max_size=None,
                    open_timeout=CONNECT_TIMEOUT,
                    ping_interval=None,
                    close_timeout=2,
                )
                first = await asyncio.wait_for(ws.recv(), CONNECT_TIMEOUT)
                if isinstance(first, bytes):
                    first = first.decode()
                # A large snapshot comes in several messages: wait for all its rows if asked.
                while first.count("<tr id=") < until_rows:
                    more = await asyncio.wait_for(ws.recv(), CONNECT_TIMEOUT)
                    first += more if isinstance(more, str) else more.decode()
            except Exception as exc:  # noqa: BLE001 - a refused connection is a figure, not a crash
                elapsed = time.perf_counter() - started
                return {
                    "ok": False,
                    "error": f"{type(exc).__name__} after {elapsed:.1f}s: {exc}"[:200],
                }
            seconds = time.perf_counter() - started
        at = time.time()
        client.ws = ws
        text = first
        self.record(client, text, at)
        client.task = asyncio.create_task(self._listen(client))
        return {"ok": True, "seconds": seconds, "bytes": len(text), "rows": text.count("<tr id=")}

    async def connect(self, msg: dict[str, Any]) -> dict[str, Any]:
        gate = asyncio.Semaphore(msg.get("concurrency", CONNECT_CONCURRENCY))
        new = [
            Client(len(self.clients) + i, msg.get("parse", True))
            for i in range(len(msg["cookies"]))
        ]
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                self._open(c, msg["url"], msg["origin"], cookie, gate, msg.get("until_rows", 0))
                for c, cookie in zip(new, msg["cookies"], strict=True)
            )
        )
        self.clients.extend(c for c, r in zip(new, results, strict=True) if r["ok"])
        errors = sorted({r["error"] for r in results if not r["ok"]})
        return {
            "connected": sum(r["ok"] for r in results),
            "failed": sum(not r["ok"] for r in results),
            "errors": errors[:5],
            "seconds": time.perf_counter() - started,
            "first": [
                {"seconds": r["seconds"], "bytes": r["bytes"], "rows": r["rows"]}
                for r in results
                if r["ok"]
            ],
        }

    async def collect(self, msg: dict[str, Any]) -> dict[str, Any]:
        keys: list[str] = msg["keys"]
        deadline: float = msg["deadline"]
        listening = [c for c in self.clients if c.parse]
        while time.time() < deadline:
            open_clients = sum(not c.closed for c in listening)
            if all(len(self.arrivals.get(k, ())) >= open_clients for k in keys):
                break
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(0.2, deadline - time.time()))
        return {
            "clients": len(listening),
            "closed": sum(c.closed for c in listening),
            "arrivals": {k: self.arrivals.get(k, []) for k in keys},
        }

    def reset(self) -> dict[str, Any]:
        self.arrivals.clear()
        for client in self.clients:
            client.seen.clear()
        return {"ok": True}

    async def close(self) -> dict[str, Any]:
        async def one(client: Client) -> None:
            if client.ws is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.ws.close(), 5)
            if client.task is not None:
                client.task.cancel()

        clients, self.clients = self.clients, []
        for start in range(0, len(clients), 200):
            await asyncio.gather(*(one(c) for c in clients[start : start + 200]))
        self.reset()
        return {"closed": len(clients)}


async def main() -> None:
    raise_fd_limit()
    load = Load()
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            break
        msg = json.loads(line)
        cmd = msg["cmd"]
        if cmd == "connect":
            answer = await load.connect(msg)
        elif cmd == "collect":
            answer = await load.collect(msg)
        elif cmd == "reset":
            answer = load.reset()
        elif cmd == "close":
            answer = await load.close()
        elif cmd == "exit":
            await load.close()
            break
        else:
            answer = {"error": f"unknown command {cmd}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())

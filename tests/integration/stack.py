"""A production-shaped Callboard on 127.0.0.1 for tests: PostgreSQL, a private Redis, the UAPI
emulator, daphne processes and watchers as real processes; and screens as real websocket
clients that reconnect as the browser does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[2]
ROW_RE = re.compile(r'<tr id="call-([0-9a-f]+)"([^>]*)>')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Stack:
    workdir: Path
    postgres_admin_url: str
    redis_port: int = field(default_factory=free_port)
    emulator_port: int = field(default_factory=free_port)
    database: str = field(default_factory=lambda: f"callboard_it_{uuid.uuid4().hex[:8]}")
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # The dashboard's daphne processes, by name; VoipNow's Call Events go to "a".
    ports: dict[str, int] = field(default_factory=lambda: {"a": free_port(), "b": free_port()})

    # -- services --

    @property
    def database_url(self) -> str:
        return self.postgres_admin_url.rsplit("/", 1)[0] + f"/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CALLBOARD_"))}
        env.update(
            PYTHONPATH=str(ROOT),
            DJANGO_SETTINGS_MODULE="dashboard.settings",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            UAPI_BASE_URL=f"http://127.0.0.1:{self.emulator_port}",
            CALLBOARD_VAR_DIR=str(self.workdir / "var"),
            CALLBOARD_HOOK_SECRET="integration-hook",
            CALLBOARD_POLL_INTERVAL="1",
            CALLBOARD_WATCHER_LOCK_TTL="3",
            CALLBOARD_LOG_LEVEL="INFO",
        )
        env.update(extra)
        return env

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.postgres_admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def drop_database(self) -> None:
        import psycopg

        with psycopg.connect(self.postgres_admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def start_redis(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.start(
            "redis",
            [
                binary,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
        )
        wait_for(lambda: port_open(self.redis_port), 10, "redis")

    def manage(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def setup(self) -> None:
        self.create_database()
        self.start_redis()
        self.manage("migrate", "-v0")
        self.manage("shell", "-c", "from calls.demo_data import seed; seed()")
        self.start(
            "emulator",
            [
                sys.executable,
                "manage.py",
                "uapi_emulator",
                "--port",
                str(self.emulator_port),
                "--no-traffic",
            ],
        )
        wait_for(lambda: port_open(self.emulator_port), 20, "the emulator")

    def session(self, username: str) -> str:
        code = (
            "from django.contrib.auth.models import User; from django.test import Client; "
            f"c = Client(); c.force_login(User.objects.get(username={username!r})); "
            "print(c.cookies['sessionid'].value)"
        )
        return self.manage("shell", "-c", code).strip().splitlines()[-1]

    # -- processes --

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            argv, cwd=ROOT, env=env or self.env(), stdout=log, stderr=subprocess.STDOUT
        )

    def start_daphne(self, name: str, port: int, public_port: int) -> None:
        self.start(
            name,
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "dashboard.asgi:application",
            ],
            env=self.env(CALLBOARD_PUBLIC_URL=f"http://127.0.0.1:{public_port}"),
        )
        wait_for(lambda: port_open(port), 20, name)

    def start_watcher(self, name: str, public_port: int) -> None:
        self.start(
            name,
            [sys.executable, "manage.py", "watch_calls"],
            env=self.env(CALLBOARD_PUBLIC_URL=f"http://127.0.0.1:{public_port}"),
        )

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def teardown(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        with contextlib.suppress(Exception):
            self.drop_database()

    # -- the emulator's control API --

    def start_call(self, queue: str = "0001*100") -> str:
        response = httpx.post(
            f"http://127.0.0.1:{self.emulator_port}/_emulator/calls",
            json={"queue": queue, "autoAnswer": False},
            timeout=5,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def hang_up(self, call_id: str) -> None:
        httpx.delete(f"http://127.0.0.1:{self.emulator_port}/_emulator/calls/{call_id}", timeout=5)


class Screen:
    """A browser's view of the live calls: applies snapshots and fragments as htmx would, and
    reconnects after every close with a short backoff."""

    def __init__(self, url: str, session: str, origin: str) -> None:
        self.url, self.session, self.origin = url, session, origin
        self.rows: dict[str, str] = {}
        self.snapshots = 0
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        retry = 0
        while True:
            try:
                async with websockets.connect(
                    self.url,
                    additional_headers={
                        "Cookie": f"sessionid={self.session}",
                        "Origin": self.origin,
                    },
                    open_timeout=5,
                ) as ws:
                    retry = 0
                    self.connected.set()
                    async for message in ws:
                        self.apply(str(message))
            except (OSError, websockets.WebSocketException, TimeoutError):
                pass
            self.connected.clear()
            retry += 1
            await asyncio.sleep(min(2.0, 0.1 * 2**retry))

    def apply(self, html: str) -> None:
        if '<tbody id="calls-body"' in html:
            self.snapshots += 1
            self.rows = {}
        for call_id, attrs in ROW_RE.findall(html):
            if 'hx-swap-oob="delete"' in attrs:
                self.rows.pop(call_id, None)
            else:
                self.rows[call_id] = attrs

    async def until(self, predicate: Any, within: float, what: str) -> float:
        """Wait until ``predicate(self)`` holds; answer how long it took."""
        started = time.monotonic()
        while not predicate(self):
            if time.monotonic() - started > within:
                raise AssertionError(
                    f"timed out after {within}s waiting for {what}; rows={set(self.rows)}"
                )
            await asyncio.sleep(0.02)
        return time.monotonic() - started

"""A production-shaped Callboard on 127.0.0.1 for tests: PostgreSQL, a private Redis, the UAPI
emulator, daphne processes and watchers as real processes; and screens as real websocket
clients that reconnect as the browser does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets

from tests.support import launcher
from tests.support.ports import HOST, free_port
from tests.support.processes import Processes
from tests.support.waiting import wait_until

ROOT = launcher.ROOT
ROW_RE = re.compile(r'<tr id="call-([0-9a-f]+)"([^>]*)>')


@dataclass
class Stack:
    workdir: Path
    postgres_admin_url: str
    redis_port: int = field(default_factory=free_port)
    emulator_port: int = field(default_factory=free_port)
    database: str = field(default_factory=lambda: f"callboard_it_{uuid.uuid4().hex[:8]}")
    procs: Processes = field(init=False)
    # The dashboard's daphne processes, by name; VoipNow's Call Events go to "a".
    ports: dict[str, int] = field(default_factory=lambda: {"a": free_port(), "b": free_port()})

    def __post_init__(self) -> None:
        self.procs = Processes(self.workdir)

    # -- services --

    @property
    def database_url(self) -> str:
        return self.postgres_admin_url.rsplit("/", 1)[0] + f"/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    @property
    def emulator_url(self) -> str:
        return f"http://{HOST}:{self.emulator_port}"

    def url(self, name: str) -> str:
        """The address of the daphne process ``name`` ("a" or "b")."""
        return f"http://{HOST}:{self.ports[name]}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CALLBOARD_"))}
        env.update(
            PYTHONPATH=str(ROOT),
            DJANGO_SETTINGS_MODULE="dashboard.settings",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            UAPI_BASE_URL=self.emulator_url,
            CALLBOARD_VAR_DIR=str(self.workdir / "var"),
            CALLBOARD_HOOK_SECRET="integration-hook-secret-of-at-least-32-characters",
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
        launcher.start_redis(self.procs, self.redis_port, cwd=self.workdir)

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
        launcher.start_emulator(self.procs, self.emulator_port, self.env())

    def session(self, username: str) -> str:
        code = (
            "from django.contrib.auth.models import User; from django.test import Client; "
            f"c = Client(); c.force_login(User.objects.get(username={username!r})); "
            "print(c.cookies['sessionid'].value)"
        )
        return self.manage("shell", "-c", code).strip().splitlines()[-1]

    # -- processes --

    def start_daphne(self, name: str, port: int, public_port: int) -> None:
        env = self.env(CALLBOARD_PUBLIC_URL=f"http://{HOST}:{public_port}")
        launcher.start_daphne(self.procs, name, port, env)

    def start_watcher(self, name: str, public_port: int, *, wait: bool = False) -> None:
        """Start a watcher; with ``wait``, return once the dashboard reports it "ok"."""
        env = self.env(CALLBOARD_PUBLIC_URL=f"http://{HOST}:{public_port}")
        ready_on = f"http://{HOST}:{public_port}" if wait else None
        launcher.start_watcher(self.procs, name, env, ready_on=ready_on)

    def log(self, name: str) -> str:
        return self.procs.log(name)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        self.procs.stop(name, sig)

    def teardown(self) -> None:
        self.procs.stop_all()
        with contextlib.suppress(Exception):
            self.drop_database()

    # -- the emulator's control API --

    def start_call(self, queue: str = "0001*100") -> str:
        response = httpx.post(
            f"{self.emulator_url}/_emulator/calls",
            json={"queue": queue, "autoAnswer": False},
            timeout=5,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def hang_up(self, call_id: str) -> None:
        httpx.delete(f"{self.emulator_url}/_emulator/calls/{call_id}", timeout=5)


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

    async def until(self, predicate: Callable[[Screen], object], within: float, what: str) -> None:
        """Wait until ``predicate(self)`` holds. Raises AssertionError after ``within`` s."""
        try:
            await wait_until(lambda: predicate(self), within, what, interval=0.02)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; rows={set(self.rows)}") from None

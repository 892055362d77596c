"""Orchestration of ``make bench``: set up a private stack on 127.0.0.1, run the scenarios,
print the table and write ``bench/RESULTS.md``; every process started is stopped on the way out.

The stack: a temporary ``CALLBOARD_VAR_DIR`` with SQLite (enough here: the live path reads the
database only when a socket connects), a private redis-server, the emulator without traffic,
one daphne process and one ``watch_calls``. Load comes from separate processes
(``bench.load``); this process is the driver, so send and arrival times share one clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import drive, machine
from bench.procs import raise_fd_limit, rss_kib
from bench.stats import (
    Delivery,
    Row,
    delivery,
    delivery_row,
    fmt_ms,
    percentile,
    pooled,
    table,
    verdict,
)
from calls.uapi.client import PAGE_SIZE
from calls.uapi.envelope import read_collection
from tests.support import launcher
from tests.support.ports import HOST, free_port
from tests.support.processes import Processes

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PYTHON = sys.executable

CLIENTS = 200
RATE = 20.0
DURATION = 15.0
ROUNDS = 3
IDLE_CLIENTS = 2000
LIVE_CALLS = 5000
POLL_INTERVAL = 1.0
POLL_RATE = 5.0
POLL_DURATION = 12.0
LOAD_PROCESSES = 2
SNAPSHOT_SAMPLES = 20
LIST_SAMPLES = 10
POLL_SAMPLES = 20
# Queue history: days of records, calls a day per queue (Sales, Support), samples.
HISTORY_DAYS = 90
HISTORY_PER_DAY = (1500, 1000)
FIGURES_SAMPLES = 30
RECORDED_CALLS = 200
# Whatever is still missing this long after the last change is counted as lost.
DELIVERY_DEADLINE = 5.0
RUN_BUDGET = 540.0


# ---- setup -------------------------------------------------------------------------------


def prepare_database(var_dir: Path, users: int) -> tuple[list[str], int]:
    """Migrate and seed a fresh database; add ``users`` supervisors of Acme, each logged in.

    Returns their ``sessionid`` cookies and Acme's primary key.
    """
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import transaction
    from django.test import Client

    from calls.demo_data import seed
    from calls.models import Organization, Supervisor

    call_command("migrate", interactive=False, verbosity=0)
    seed()
    acme = Organization.objects.get(voipnow_id="1")
    unusable = make_password(None)
    cookies: list[str] = []
    with transaction.atomic():
        made = User.objects.bulk_create(
            [User(username=f"bench{i:05d}", password=unusable) for i in range(users)]
        )
        Supervisor.objects.bulk_create([Supervisor(user=u, organization=acme) for u in made])
        for user in made:
            client = Client()
            client.force_login(user)
            cookies.append(client.cookies["sessionid"].value)
    return cookies, acme.pk


@dataclass
class Stack:
    tmp: Path
    procs: Processes
    env: dict[str, str]
    redis_url: str
    emulator_url: str
    daphne_port: int
    cookies: list[str]
    acme_id: int
    loads: list[LoadProcess] = field(default_factory=list)

    @property
    def daphne_url(self) -> str:
        return f"http://{HOST}:{self.daphne_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.daphne_port}"

    @property
    def daphne_pid(self) -> int:
        return self.procs.running["daphne"].pid


def start_stack(tmp: Path, users: int) -> Stack:
    redis_port, emulator_port, daphne_port = free_port(), free_port(), free_port()
    redis_url = f"redis://{HOST}:{redis_port}/0"
    emulator_url = f"http://{HOST}:{emulator_port}"
    # Settings are read from the environment once, when Django starts: set them first. This
    # process keeps the in-memory cache (no REDIS_URL), so its in-process measurements never
    # write into the stack's Redis.
    for name in ("REDIS_URL", "DATABASE_URL", "DJANGO_DEBUG"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "CALLBOARD_VAR_DIR": str(tmp / "var"),
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "CALLBOARD_HOOK_SECRET": secrets.token_urlsafe(24),
            "UAPI_BASE_URL": emulator_url,
            "CALLBOARD_PUBLIC_URL": f"http://{HOST}:{daphne_port}",
            "CALLBOARD_LOG_LEVEL": "INFO",
        }
    )
    cookies, acme_id = prepare_database(tmp / "var", users)
    env = dict(os.environ)
    env.update({"REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})

    log_dir = tmp / "logs"
    log_dir.mkdir()
    procs = Processes(log_dir, preexec_fn=raise_fd_limit)
    stack = Stack(tmp, procs, env, redis_url, emulator_url, daphne_port, cookies, acme_id)
    try:
        launcher.start_redis(procs, redis_port, cwd=tmp, extra=["--maxclients", "10000"])
        launcher.start_emulator(procs, emulator_port, env)
        start_daphne(stack)
        start_watcher(stack, events=True)
    except BaseException:
        procs.stop_all()
        raise
    return stack


def start_daphne(stack: Stack) -> None:
    """The one daphne process, with the baseline consumer mounted; (re)started fresh."""
    stack.procs.stop("daphne")
    launcher.start_daphne(
        stack.procs, "daphne", stack.daphne_port, stack.env, application="bench.asgi:application"
    )


def start_watcher(stack: Stack, *, events: bool, poll_interval: float | None = None) -> None:
    env = dict(stack.env)
    env["CALLBOARD_CALL_EVENTS"] = "1" if events else "0"
    if poll_interval is not None:
        env["CALLBOARD_POLL_INTERVAL"] = str(poll_interval)
    name = "watcher" if events else "watcher-polling"
    # Ready once the dashboard reports it "ok": with events, after it registered them.
    launcher.start_watcher(stack.procs, name, env, ready_on=stack.daphne_url)


# ---- load processes ----------------------------------------------------------------------


class LoadProcess:
    """A ``bench.load`` process, asked one JSON command at a time."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc

    @classmethod
    async def start(cls, name: str, stack: Stack) -> LoadProcess:
        log = (stack.procs.log_dir / f"{name}.log").open("ab")
        proc = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            "bench.load",
            cwd=ROOT,
            env=stack.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            # Answers carry every arrival time of a scenario on one line.
            limit=1 << 28,
        )
        log.close()
        return cls(name, proc)

    async def ask(self, msg: dict[str, Any], within: float = 120.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), within)
        if not line:
            raise RuntimeError(f"{self.name} exited (code {self.proc.returncode})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def stop(self) -> None:
        if self.proc.returncode is not None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"cmd": "exit"}\n')
            await self.proc.stdin.drain()
            await asyncio.wait_for(self.proc.wait(), 30)
        except (TimeoutError, OSError, RuntimeError):
            self.kill()
            await self.proc.wait()

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


def _split(items: list[str], parts: int) -> list[list[str]]:
    return [items[i::parts] for i in range(parts)]


async def connect(
    stack: Stack, path: str, cookies: list[str], *, parse: bool = True
) -> dict[str, Any]:
    """Open one client per cookie, spread over the load processes; all must connect."""
    answers = await asyncio.gather(
        *(
            load.ask(
                {
                    "cmd": "connect",
                    "url": f"{stack.ws_url}{path}",
                    "origin": stack.daphne_url,
                    "cookies": part,
                    "parse": parse,
                },
                within=180,
            )
            for load, part in zip(stack.loads, _split(cookies, len(stack.loads)), strict=True)
            if part
        )
    )
    failed = sum(a["failed"] for a in answers)
    if failed:
        errors = sorted({e for a in answers for e in a["errors"]})
        raise RuntimeError(f"{failed} of {len(cookies)} clients did not connect: {errors}")
    return {
        "connected": sum(a["connected"] for a in answers),
        "seconds": max(a["seconds"] for a in answers),
        "first": [f for a in answers for f in a["first"]],
    }


async def on_all(stack: Stack, msg: dict[str, Any], within: float = 120.0) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(load.ask(msg, within) for load in stack.loads)))


async def collect(stack: Stack, sends: dict[str, float]) -> list[dict[str, Any]]:
    deadline = max(sends.values(), default=time.time()) + DELIVERY_DEADLINE
    msg = {"cmd": "collect", "keys": list(sends), "deadline": deadline}
    return await on_all(stack, msg, within=DELIVERY_DEADLINE + 60)


# ---- scenarios ---------------------------------------------------------------------------


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


def _kib(value: float) -> str:
    return f"{value:.1f} KiB" if value < 1024 else f"{value / 1024:.1f} MiB"


async def sample_fragment(http: httpx.AsyncClient) -> str:
    """A real rendered row of an Acme call, with ``{id}`` where its id goes."""
    from calls.rows import Directory, render_row
    from calls.uapi.types import PhoneCall

    r = await http.post(
        "/_emulator/calls", json={"queue": drive.ACME_QUEUES[0], "autoAnswer": False}
    )
    r.raise_for_status()
    call = PhoneCall.from_json(r.json())
    await http.delete(f"/_emulator/calls/{call.id}")
    html = render_row(call, Directory(labels={drive.ACME_QUEUES[0]: "Sales"}))
    return html.replace(call.id, "{id}")


async def held_memory(stack: Stack, path: str) -> tuple[float, float, float, dict[str, Any]]:
    """``(RSS before, RSS after, KiB per client, connect answer)`` for IDLE_CLIENTS clients
    held open on ``path``, after a warm-up (imports, templates, connection pools) so that the
    figure is what each client costs rather than what the first one loads."""
    await connect(stack, path, stack.cookies[:20])
    await on_all(stack, {"cmd": "close"})
    await asyncio.sleep(1.0)
    before = rss_kib(stack.daphne_pid)
    opened = await connect(stack, path, stack.cookies[:IDLE_CLIENTS])
    # Let the connection bursts' garbage go before reading the figure.
    await asyncio.sleep(2.0)
    after = rss_kib(stack.daphne_pid)
    return before, after, (after - before) / opened["connected"], opened


async def idle_clients(stack: Stack, http: httpx.AsyncClient, report: Report) -> None:
    name = f"3. {IDLE_CLIENTS:,} idle clients, 1 change"
    # Each on a fresh daphne: freed memory stays with the process and would be reused.
    _, _, bare, _ = await held_memory(stack, "/ws/bench/baseline/")
    await on_all(stack, {"cmd": "close"})
    await asyncio.to_thread(start_daphne, stack)
    before, after, per_client, opened = await held_memory(stack, "/ws/calls/")
    await on_all(stack, {"cmd": "reset"})
    driven = drive.Driven()
    call_id = await drive.create_call(http, drive.ACME_QUEUES[0], driven)
    assert call_id is not None
    await asyncio.sleep(1.5)
    await drive.answer_call(http, call_id, driven)
    await asyncio.sleep(1.5)
    await drive.hang_up(http, call_id, driven)
    d = delivery(driven.sends, await collect(stack, driven.sends), errors=len(driven.errors))
    await on_all(stack, {"cmd": "close"})
    row = delivery_row(name, "≤ 40 KiB/client, p95 ≤ 1 s", d)
    row.memory = f"{_kib(per_client)}/client (bare: {_kib(bare)})"
    row.throughput = f"{d.fragments_per_s:.0f} fragments/s"
    row.verdict = verdict(per_client <= 40 and d.ms(95) <= 1000 and d.lost == 0)
    report.rows.append(row)
    report.details.append(
        f"- **{name}**: daphne RSS {_kib(before)} before, {_kib(after)} with "
        f"{opened['connected']:,} clients connected ({_kib(per_client)} each; the same number "
        f"of clients on the bare baseline consumer, same server: {_kib(bare)} each); connecting "
        f"them all took {opened['seconds']:.1f} s (connect → snapshot p50 "
        f"{fmt_ms(percentile([f['seconds'] for f in opened['first']], 50) * 1000)}, p95 "
        f"{fmt_ms(percentile([f['seconds'] for f in opened['first']], 95) * 1000)}); "
        f"3 changes (arrive, answer, hang up) x {d.clients:,} clients, latency over all "
        f"{len(d.latencies):,} deliveries."
    )


async def baseline_and_events(
    stack: Stack, http: httpx.AsyncClient, fragment: str, report: Report
) -> None:
    """Baseline and live path in alternating rounds on the same server, latencies pooled: a
    drift of the shared machine's load then weighs on both alike."""
    # The layer the dashboard uses with REDIS_URL set (dashboard/settings.py).
    from channels_redis.pubsub import RedisPubSubChannelLayer

    layer = RedisPubSubChannelLayer(hosts=[stack.redis_url])
    bases: list[Delivery] = []
    lives: list[Delivery] = []
    errors: list[str] = []
    rss_base = rss = 0
    for _ in range(ROUNDS):
        await connect(stack, "/ws/bench/baseline/", stack.cookies[:CLIENTS])
        await on_all(stack, {"cmd": "reset"})
        driven = await drive.drive_baseline(layer, fragment, rate=RATE, duration=DURATION)
        bases.append(delivery(driven.sends, await collect(stack, driven.sends)))
        await on_all(stack, {"cmd": "close"})
        rss_base = rss_kib(stack.daphne_pid)

        await connect(stack, "/ws/calls/", stack.cookies[:CLIENTS])
        await on_all(stack, {"cmd": "reset"})
        driven = await drive.drive_calls(http, rate=RATE, duration=DURATION)
        errors += driven.errors
        lives.append(
            delivery(driven.sends, await collect(stack, driven.sends), errors=len(driven.errors))
        )
        rss = rss_kib(stack.daphne_pid)
        await on_all(stack, {"cmd": "close"})
    await layer.flush()
    base, d = pooled(bases), pooled(lives)

    name = f"1. baseline: bare group_send, {CLIENTS} clients"
    row = delivery_row(name, "reference", base)
    row.memory = f"daphne {_kib(rss_base)}"
    report.rows.append(row)

    ratio = d.ms(95) / base.ms(95)
    name = f"2. event-driven: {CLIENTS} clients, {RATE:.0f} changes/s"
    row = delivery_row(name, "p95 ≤ 100 ms, p99 ≤ 250 ms, 0 lost, p95 ≤ 1.5x baseline", d)
    row.memory = f"daphne {_kib(rss)}"
    row.verdict = verdict(d.ms(95) <= 100 and d.ms(99) <= 250 and d.lost == 0 and ratio <= 1.5)
    report.rows.append(row)
    rounds = "; ".join(
        f"{fmt_ms(b.ms(50))}/{fmt_ms(b.ms(95))} vs {fmt_ms(x.ms(50))}/{fmt_ms(x.ms(95))}"
        for b, x in zip(bases, lives, strict=True)
    )
    report.details.append(
        f"- **{name}**: {ROUNDS} rounds, each {DURATION:.0f} s of the baseline then "
        f"{DURATION:.0f} s of the live path, latencies pooled; {d.changes} changes in all "
        f"(arrive, answer, hang up in Acme's two queues), {CLIENTS} clients; p95 is "
        f"{ratio:.2f}x the baseline's ({fmt_ms(base.ms(95))}). Per round, baseline p50/p95 vs "
        f"live p50/p95: {rounds}. Driver errors: {len(errors)}"
        + (f" (first: {errors[0]})" if errors else "")
        + ". The baseline sent the same number of fragments, of the same size "
        f"({len(fragment.replace('{id}', 'bench-000'))} bytes), through the same daphne, "
        "Redis layer and clients."
    )


async def wait_for_published(stack: Stack, calls: int, within: float) -> float:
    """Seconds until the watcher's snapshot of Acme in Redis holds ``calls`` calls."""
    from django.core.cache.backends.redis import RedisCache

    from calls import store

    redis = RedisCache(stack.redis_url, {"KEY_PREFIX": "callboard"})
    started = time.perf_counter()
    while time.perf_counter() - started < within:
        index = await store.published(stack.acme_id, cache=redis)
        if index and len(index.ids) >= calls:
            return time.perf_counter() - started
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the watcher did not publish {calls} calls within {within:.0f}s")


class _NoLayer:
    """Stands in for the channel layer when the watcher runs in process, without a network."""

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        return


async def poll_cost(pages: dict[int, bytes]) -> dict[str, list[float]]:
    """One poll of the watcher on a 5,000-call listing, in process, through the real client
    (an in-memory transport serves the emulator's pages, by ``startIndex``): decoding and
    parsing (``Watcher.fetch_all``) and the diff (``Watcher.apply_poll`` with nothing
    changed, as a steady poll finds it). ``cold`` is the first poll's parse, before the
    watcher knows any call."""
    from calls.live import Watcher, tune_gc_for_polling
    from calls.uapi.client import UapiClient

    tune_gc_for_polling()  # as watch_calls does

    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token.php"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        page = pages.get(int(request.url.params.get("startIndex", 0)), b'{"entry": []}')
        return httpx.Response(200, content=page, headers={"Content-Type": "application/json"})

    figures: dict[str, list[float]] = {"parse": [], "diff": [], "cold": [], "first": []}
    async with UapiClient(
        "http://uapi.bench", "bench", "bench", transport=httpx.MockTransport(serve)
    ) as uapi:
        watcher = Watcher(uapi, channel_layer=_NoLayer(), poll_interval=1, call_events=False)
        await watcher.load_directory()
        t0 = time.perf_counter()
        first = await watcher.fetch_all()
        t1 = time.perf_counter()
        await watcher.apply_poll(first, 1)
        figures["cold"].append(t1 - t0)
        figures["first"].append(time.perf_counter() - t1)
        for seq in range(2, 2 + POLL_SAMPLES):
            t0 = time.perf_counter()
            calls = await watcher.fetch_all()
            t1 = time.perf_counter()
            await watcher.apply_poll(calls, seq)
            t2 = time.perf_counter()
            figures["parse"].append(t1 - t0)
            figures["diff"].append(t2 - t1)
    return figures


def _ms_row(name: str, target: str, seconds: list[float], ok: bool | None) -> Row:
    ms = [s * 1000 for s in seconds]
    return Row(
        scenario=name,
        target=target,
        p50=fmt_ms(percentile(ms, 50)),
        p95=fmt_ms(percentile(ms, 95)),
        p99=fmt_ms(percentile(ms, 99)),
        verdict="—" if ok is None else verdict(ok),
    )


async def many_calls(stack: Stack, http: httpx.AsyncClient, report: Report) -> None:
    per_queue = LIVE_CALLS // len(drive.ACME_QUEUES)
    started = time.perf_counter()
    for queue in drive.ACME_QUEUES:
        r = await http.post(
            "/_emulator/calls", json={"queue": queue, "count": per_queue, "autoAnswer": False}
        )
        r.raise_for_status()
    created = time.perf_counter() - started
    published = await wait_for_published(stack, LIVE_CALLS, 60)

    token = (
        await http.post(
            "/oauth/token.php",
            data={
                "grant_type": "client_credentials",
                "client_id": "demo-app",
                "client_secret": "demo-secret",
            },
        )
    ).json()["access_token"]
    listing: list[float] = []
    # As the watcher reads it: pages of PAGE_SIZE, one after another.
    starts = range(0, LIVE_CALLS, PAGE_SIZE)
    pages: dict[int, bytes] = {}
    for _ in range(LIST_SAMPLES):
        t0 = time.perf_counter()
        for start in starts:
            r = await http.get(
                "/uapi/phoneCalls/@me/@self",
                params={"count": PAGE_SIZE, "startIndex": start},
                headers={"Authorization": f"Bearer {token}"},
            )
            r.raise_for_status()
            pages[start] = r.content
        listing.append(time.perf_counter() - t0)
    entries = sum(len(read_collection(json.loads(b), "bench").entries) for b in pages.values())
    body_size = sum(len(b) for b in pages.values())

    snapshots: list[float] = []
    rows: list[int] = []
    sizes: list[int] = []
    for i in range(SNAPSHOT_SAMPLES):
        load = stack.loads[i % len(stack.loads)]
        answer = await load.ask(
            {
                "cmd": "connect",
                "url": f"{stack.ws_url}/ws/calls/",
                "origin": stack.daphne_url,
                "cookies": [stack.cookies[i]],
                "parse": False,
                "until_rows": LIVE_CALLS,
            }
        )
        await load.ask({"cmd": "close"})
        if answer["failed"]:
            raise RuntimeError(f"a snapshot client did not connect: {answer['errors']}")
        snapshots.append(answer["first"][0]["seconds"])
        rows.append(answer["first"][0]["rows"])
        sizes.append(answer["first"][0]["bytes"])

    cost = await poll_cost(pages)
    steady = [p + d for p, d in zip(cost["parse"], cost["diff"], strict=True)]

    report.rows.append(
        _ms_row(
            f"4a. {LIVE_CALLS:,} calls: snapshot to a new client",
            "≤ 500 ms",
            snapshots,
            percentile(snapshots, 95) <= 0.5 and min(rows) >= LIVE_CALLS,
        )
    )
    report.rows[-1].memory = f"daphne {_kib(rss_kib(stack.daphne_pid))}"
    report.rows.append(
        _ms_row(
            "4b. one poll: parse + diff (in process)",
            "≤ 50 ms",
            steady,
            percentile(steady, 95) <= 0.05,
        )
    )
    report.rows.append(
        _ms_row("    decode + parse: Watcher.fetch_all", "part of 4b", cost["parse"], None)
    )
    report.rows.append(
        _ms_row("    diff: Watcher.apply_poll, no change", "part of 4b", cost["diff"], None)
    )
    report.rows.append(
        _ms_row(
            f"4c. emulator List PhoneCalls ({LIVE_CALLS:,}, pages of {PAGE_SIZE:,}) over HTTP",
            "< 100 ms",
            listing,
            percentile(listing, 95) < 0.1,
        )
    )
    report.details.append(
        f"- **4. {LIVE_CALLS:,} live calls**: created with {len(drive.ACME_QUEUES)} control "
        f"requests in {created * 1000:.0f} ms; the watcher had published all of them "
        f"{published:.1f} s later. Snapshot: {SNAPSHOT_SAMPLES} new clients one after another, "
        f"connect → snapshot received; each held {min(rows):,}-{max(rows):,} rows in "
        f"{statistics.median(sizes) / 1e6:.1f} MB. Poll: the List PhoneCalls pages "
        f"({len(pages)} of {PAGE_SIZE:,}, {body_size / 1e6:.1f} MB, {entries:,} entries) fed "
        f"{POLL_SAMPLES} times to an "
        f"in-process Watcher through the client (the first poll: decode and parse every call "
        f"{cost['cold'][0] * 1000:.0f} ms, publish rendering every row "
        f"{cost['first'][0] * 1000:.0f} ms; later polls reuse the calls whose JSON did not "
        "change, and 4b counts JSON decoding too). List PhoneCalls: "
        f"{LIST_SAMPLES} listings of {len(pages)} pages each, first request sent → last body "
        "read, with httpx."
    )


async def polling_only(stack: Stack, http: httpx.AsyncClient, report: Report) -> None:
    # A reset drops the Call Event registrations too, so nothing but the poll can tell the
    # watcher about a change.
    (await http.post("/_emulator/reset")).raise_for_status()
    stack.procs.stop("watcher")
    await asyncio.to_thread(start_watcher, stack, events=False, poll_interval=POLL_INTERVAL)
    # A few polls publish the reset (thousands of removals) before the clients come.
    await asyncio.sleep(3 * POLL_INTERVAL)
    events = (await http.get("/_emulator/events")).json()
    await connect(stack, "/ws/calls/", stack.cookies[:CLIENTS])
    await on_all(stack, {"cmd": "reset"})
    # Polling can only show a state that lasts past a poll: each state here lives 2.4 s
    # (4 cycles of 3 changes at 5 changes/s), at most 4 calls talk at once in 6 agents.
    driven = await drive.drive_calls(
        http, rate=POLL_RATE, duration=POLL_DURATION, answer_lag=4, hangup_lag=8
    )
    d = delivery(driven.sends, await collect(stack, driven.sends), errors=len(driven.errors))
    await on_all(stack, {"cmd": "close"})
    events_after = (await http.get("/_emulator/events")).json()
    limit = POLL_INTERVAL * 1000 + 100
    name = f"5. polling only (every {POLL_INTERVAL:g} s): {CLIENTS} clients"
    row = delivery_row(name, f"p95 ≤ {limit:.0f} ms", d)
    row.memory = f"daphne {_kib(rss_kib(stack.daphne_pid))}"
    row.verdict = verdict(d.ms(95) <= limit and d.lost == 0)
    report.rows.append(row)
    report.details.append(
        f"- **{name}**: watch_calls restarted with CALLBOARD_CALL_EVENTS=0 and "
        f"CALLBOARD_POLL_INTERVAL={POLL_INTERVAL:g}; {d.changes} changes at "
        f"{POLL_RATE:g}/s; Call Events delivered meanwhile: "
        f"{_count(events_after) - _count(events)}; driver errors: {len(driven.errors)}."
    )


def seed_history(queues: list[str], now: datetime) -> int:
    """HISTORY_DAYS of records of each queue up to ``now``, evenly spread, in the bench's
    database: most answered (some after the threshold), one in eight abandoned. Returns how
    many were written."""
    from calls.models import Extension, QueueCall

    made = 0
    for number, per_day in zip(queues, HISTORY_PER_DAY, strict=True):
        queue = Extension.objects.get(number=number)
        step = timedelta(days=1) / per_day
        batch: list[QueueCall] = []
        for i in range(HISTORY_DAYS * per_day):
            arrived = now - step * (i + 1)
            wait = (i * 7) % 45
            answered = i % 8 != 0
            batch.append(
                QueueCall(
                    organization_id=queue.organization_id,
                    queue=queue,
                    phone_call_id=f"bench-{number}-{i}",
                    caller="+14155550101",
                    arrived=arrived,
                    answered=arrived + timedelta(seconds=wait) if answered else None,
                    agent="0001*201" if answered else "",
                    ended=arrived + timedelta(seconds=wait + (90 if answered else 0)),
                    outcome="answered" if answered else "abandoned",
                    wait_seconds=wait,
                    talk_seconds=90 if answered else None,
                )
            )
            if len(batch) == 5000:
                QueueCall.objects.bulk_create(batch)
                made += len(batch)
                batch = []
        QueueCall.objects.bulk_create(batch)
        made += len(batch)
    return made


def time_figures(queue: str, now: datetime) -> list[float]:
    """Seconds each of FIGURES_SAMPLES reads of one queue's figures took: the day's figures
    and the chart's slices, as a panel reads them."""
    from calls.figures import day_figures, recent_slices
    from calls.models import Extension

    ext = Extension.objects.select_related("organization").get(number=queue)
    seconds: list[float] = []
    for _ in range(FIGURES_SAMPLES):
        t0 = time.perf_counter()
        day_figures([ext.pk], ext.organization.time_zone, now)
        recent_slices([ext.pk], now)
        seconds.append(time.perf_counter() - t0)
    return seconds


def _queue_call(call_id: str, queue: str, at: datetime, agent: str | None) -> Any:
    from calls.uapi.types import PhoneCall, PhoneCallView

    views = [PhoneCallView(id="00", extension=queue, status=4, source=("+14155550101",))]
    if agent is not None:
        views.append(PhoneCallView(id="01", extension=agent, status=5, answered=at))
    return PhoneCall(
        id=call_id,
        extension=queue,
        owner_id="1",
        published=at,
        answered=at if agent else None,
        views=tuple(views),
    )


async def recording_cost(acme_id: int) -> dict[str, list[float]]:
    """Each change of RECORDED_CALLS queue calls (arrive, answered, end) told to a QueueFloor
    in process, against the bench's database with its 90 days: ``record`` is the time
    ``calls_changed`` took, ``panels`` the panels rendered after it, per change."""
    from calls.history import QueueFloor

    floor = QueueFloor()
    queue, agent = drive.ACME_QUEUES[0], "0001*201"
    live: dict[str, Any] = {}
    figures: dict[str, list[float]] = {"record": [], "panels": []}
    await floor.calls_changed(acme_id, live, [])  # the first look, as at a watcher's start

    async def change(ended: list[Any]) -> None:
        t0 = time.perf_counter()
        await floor.calls_changed(acme_id, live, ended)
        t1 = time.perf_counter()
        await floor.panels(acme_id, live)
        figures["record"].append(t1 - t0)
        figures["panels"].append(time.perf_counter() - t1)

    for i in range(RECORDED_CALLS):
        call_id = f"bench-rec-{i}"
        now = datetime.now(UTC)
        live[call_id] = _queue_call(call_id, queue, now, None)
        await change([])
        live[call_id] = _queue_call(call_id, queue, now, agent)
        await change([])
        await change([live.pop(call_id)])
    return figures


async def queue_history(stack: Stack, report: Report) -> None:
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    made = await asyncio.to_thread(seed_history, list(drive.ACME_QUEUES[:2]), now)
    seeded = time.perf_counter() - t0
    figures = await asyncio.to_thread(time_figures, drive.ACME_QUEUES[0], now)
    cost = await recording_cost(stack.acme_id)
    per_call = [sum(cost["record"][i : i + 3]) for i in range(0, len(cost["record"]), 3)]
    name = f"6. figures of a queue with {HISTORY_DAYS} days of records (in process)"
    report.rows.append(_ms_row(name, "< 100 ms", figures, percentile(figures, 95) < 0.1))
    report.rows.append(
        _ms_row("7. recording history per call: 3 changes (in process)", "reported", per_call, None)
    )
    report.rows.append(
        _ms_row("    QueueFloor.calls_changed, per change", "part of 7", cost["record"], None)
    )
    report.rows.append(
        _ms_row("    QueueFloor.panels after a change", "beside 7", cost["panels"], None)
    )
    report.details.append(
        f"- **6. queue figures**: {made:,} records written in {seeded:.1f} s into the bench's "
        f"SQLite ({HISTORY_DAYS} days of {HISTORY_PER_DAY[0]:,} calls a day in Sales and "
        f"{HISTORY_PER_DAY[1]:,} in Support); {FIGURES_SAMPLES} reads of Sales' figures, each "
        "the day's figures (`day_figures`) and the chart's last hours (`recent_slices`), as a "
        "panel reads them after a change. **7. recording**: "
        f"{RECORDED_CALLS} queue calls told to a `QueueFloor` in process, each arriving, "
        "answered, ended (one change each): the time `calls_changed` took (the database "
        "writes, one thread hop), summed per call; the panels rendered after each change "
        "(the figures read again, both queues' panels rendered) beside it. In the live path "
        "both run inside the watcher's publish of that change."
    )


def _count(events: Any) -> int:
    return len(events) if isinstance(events, list) else len(events.get("deliveries", []))


async def scenarios(stack: Stack, only: set[str]) -> Report:
    report = Report()
    for i in range(LOAD_PROCESSES):
        stack.loads.append(await LoadProcess.start(f"load{i}", stack))
    async with httpx.AsyncClient(base_url=stack.emulator_url, timeout=30) as http:
        fragment = await sample_fragment(http)
        # Warm up daphne (imports, templates, database connections) before measuring.
        await connect(stack, "/ws/calls/", stack.cookies[:20])
        await on_all(stack, {"cmd": "close"})
        steps = {
            "idle": lambda: idle_clients(stack, http, report),
            "events": lambda: baseline_and_events(stack, http, fragment, report),
            "many": lambda: many_calls(stack, http, report),
            "polling": lambda: polling_only(stack, http, report),
            "history": lambda: queue_history(stack, report),
        }
        for title, step in steps.items():
            if only and title not in only:
                continue
            t0 = time.perf_counter()
            print(f"bench: {title}…", flush=True)
            # Every scenario meets the same server: a fresh daphne, not one still letting go
            # of the previous scenario's thousands of sockets.
            await asyncio.to_thread(start_daphne, stack)
            stack.procs.check_alive()
            try:
                await step()
            except Exception as exc:  # noqa: BLE001 - one failing scenario must not cost the others
                report.rows.append(Row(scenario=title, target="(failed)", verdict="ERROR"))
                report.details.append(f"- **{title} failed**: {type(exc).__name__}: {exc}")
                print(f"bench: {title} failed: {exc!r}", flush=True)
                await on_all(stack, {"cmd": "close"})
            print(f"bench: {title} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return report


# ---- the run -----------------------------------------------------------------------------


def write_results(facts: dict[str, str], report: Report, started: float, setup: str) -> str:
    from bench.notes import NOTES

    text = table(report.rows)
    lines = [
        "# Callboard live path: benchmark",
        "",
        "Written by `make bench` (`python -m bench`); every figure below comes from the run "
        f"of {time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(started))}.",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in facts.items()),
        "",
        "## Setup",
        "",
        setup,
        "",
        "## Results",
        "",
        text,
        "",
        "Latency: from the moment the driver sends the control request (or the baseline's "
        "`group_send`) to the moment the fragment carrying that call's id reaches a client, "
        "over every (change, client) pair; loss: pairs not received within "
        f"{DELIVERY_DEADLINE:g} s of the last change. Memory: daphne's RSS from /proc.",
        "",
        *report.details,
        "",
        NOTES,
        "",
        f"Whole run: {time.time() - started:.0f} s.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    return text


SETUP = (
    f"Everything on 127.0.0.1: a temporary `CALLBOARD_VAR_DIR` with SQLite (read only when a "
    f"socket connects, so it is not on the measured path), seeded with `seed()` and "
    f"{IDLE_CLIENTS:,} extra supervisors of Acme logged in with `force_login`; a private "
    "`redis-server --save '' --appendonly no` as channel layer and cache; the emulator "
    "(`uapi_emulator --no-traffic`); one daphne process; one `watch_calls` (Call Events to "
    f"the dashboard hook, poll every 2 s). Clients: the `websockets` library, {LOAD_PROCESSES} "
    "load processes of asyncio clients, each logged in by its `sessionid` cookie. The driver "
    "(this process) changes calls with the emulator's control API."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=["idle", "events", "many", "polling", "history"],
        help="run only these scenarios (RESULTS.md is then left alone)",
    )
    args = parser.parse_args(argv)
    only = set(args.only or ())
    started = time.time()
    facts = machine.describe()
    if shutil.which("redis-server") is None:
        print("bench: redis-server is not installed (apt-get install redis-server)")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="callboard-bench-"))
    stack: Stack | None = None
    try:
        print(f"bench: setting up in {tmp}…", flush=True)
        stack = start_stack(tmp, IDLE_CLIENTS)
        report = asyncio.run(_run(stack, only))
        text = table(report.rows) if only else write_results(facts, report, started, SETUP)
        print()
        print(text)
        where = "done" if only else f"written to {RESULTS}"
        print(f"\nbench: {where} in {time.time() - started:.0f} s")
        return 0
    except BaseException:
        if stack is not None:
            for name in stack.procs.running:
                tail = stack.procs.log_tail(name, 10)
                if tail:
                    print(f"--- {name} ---\n{tail}", file=sys.stderr)
        raise
    finally:
        if stack is not None:
            for load in stack.loads:
                load.kill()
            stack.procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


async def _run(stack: Stack, only: set[str]) -> Report:
    try:
        return await asyncio.wait_for(scenarios(stack, only), RUN_BUDGET)
    finally:
        await asyncio.gather(*(load.stop() for load in stack.loads), return_exceptions=True)


__all__ = ["Delivery", "main", "subprocess"]

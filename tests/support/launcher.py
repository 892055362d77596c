"""Start the processes of a Callboard stack on 127.0.0.1 (Redis, the UAPI emulator, daphne,
the watcher) and wait until each is ready; used by the integration tests and ``make bench``.

Every function takes the ``Processes`` to start into and the environment the process runs
with (settings come from the environment, as in production), and returns once the process
answers, or raises RuntimeError with the end of its log.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from tests.support.ports import HOST, port_open
from tests.support.processes import Processes
from tests.support.readiness import dashboard_ready, emulator_ready, watcher_ok_since

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def start_redis(
    procs: Processes,
    port: int,
    *,
    cwd: Path,
    extra: Sequence[str] = (),
    within: float = 10.0,
) -> subprocess.Popen[bytes]:
    """A private redis-server without persistence on ``port``."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(cwd), *extra]
    proc = procs.start("redis", argv, {}, cwd=cwd)
    # Redis speaks no HTTP: a port that accepts is its readiness.
    procs.wait_ready("redis", lambda: port_open(port), within)
    return proc


def start_emulator(
    procs: Processes, port: int, env: dict[str, str], *, within: float = 30.0
) -> subprocess.Popen[bytes]:
    """``manage.py uapi_emulator`` without traffic on ``port``."""
    argv = [PYTHON, "manage.py", "uapi_emulator", "--port", str(port), "--no-traffic"]
    proc = procs.start("emulator", argv, env, cwd=ROOT)
    procs.wait_ready("emulator", lambda: emulator_ready(f"http://{HOST}:{port}"), within)
    return proc


def start_daphne(
    procs: Processes,
    name: str,
    port: int,
    env: dict[str, str],
    *,
    application: str = "dashboard.asgi:application",
    server: str = "daphne",
    options: Sequence[str] = (),
    within: float = 30.0,
) -> subprocess.Popen[bytes]:
    """A daphne process serving ``application`` on ``port`` with daphne's ``options``, ready
    once ``/healthz`` answers. ``server`` is the module run: daphne itself, or
    ``dashboard.serve`` (daphne with the redacted access log, as in production)."""
    argv = [PYTHON, "-m", server, "-b", HOST, "-p", str(port), *options, application]
    proc = procs.start(name, argv, env, cwd=ROOT)
    procs.wait_ready(name, lambda: dashboard_ready(f"http://{HOST}:{port}"), within)
    return proc


def start_watcher(
    procs: Processes,
    name: str,
    env: dict[str, str],
    *,
    ready_on: str | None = None,
    within: float = 30.0,
) -> subprocess.Popen[bytes]:
    """``manage.py watch_calls``. With ``ready_on`` (a dashboard's URL), return once that
    dashboard's ``/healthz`` reports this watcher "ok"; without it, at once (a watcher that
    should stand by never reports)."""
    started = datetime.now(UTC)
    proc = procs.start(name, [PYTHON, "manage.py", "watch_calls"], env, cwd=ROOT)
    if ready_on is not None:
        procs.wait_ready(name, lambda: watcher_ok_since(ready_on, started), within)
    return proc

"""`python -m dashboard.serve`, the production command, over a real daphne process: its log
holds every request and never a wallboard token or the hook's secret."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.support import launcher
from tests.support.ports import HOST, free_port
from tests.support.processes import Processes
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    url: str
    secret: str
    token: str
    procs: Processes

    def log(self) -> str:
        return self.procs.log("daphne")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("serve")
    port = free_port()
    secret = secrets.token_urlsafe(32)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CALLBOARD_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env |= {
        "CALLBOARD_VAR_DIR": str(work / "var"),
        "CALLBOARD_HOOK_SECRET": secret,
        "CALLBOARD_PUBLIC_URL": f"http://{HOST}:{port}",
        "PYTHONUNBUFFERED": "1",
    }
    seeded = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SEED],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    boards = json.loads(seeded.stdout.strip().splitlines()[-1])
    token = boards["Acme"].split("/")[2]
    procs = Processes(log_dir=work)
    try:
        launcher.start_daphne(procs, "daphne", port, env, server="dashboard.serve")
        yield Served(url=f"http://{HOST}:{port}", secret=secret, token=token, procs=procs)
    finally:
        procs.stop_all()


SEED = (
    "import json; from django.core.management import call_command; "
    "call_command('migrate', verbosity=0); "
    "from calls.demo_data import seed; print(json.dumps(seed()))"
)


def test_the_access_log_holds_the_requests_but_no_token_or_secret(served: Served) -> None:
    url, token, secret = served.url, served.token, served.secret
    assert httpx.get(f"{url}/wallboard/{token}/").status_code == 200
    assert httpx.get(f"{url}/wall%62oard/{token}/").status_code == 200
    assert httpx.get(f"{url}/wallboard/{token}x/").status_code == 404  # "Not Found: ..." logged
    assert httpx.post(f"{url}/hooks/voipnow/{secret}/", content=b"CallAPIID=abc").status_code == 200
    httpx.get(f"{url}/hooks/voipnow/{secret}")  # a hook URL without its slash reaches Django
    httpx.get(f"{url}/accounts/login/", params={"next": f"/wallboard/{token}/"})
    socket_url = url.replace("http://", "ws://", 1) + f"/ws/wallboard/{token}/"
    with connect(socket_url, origin=Origin(url)) as ws:
        assert ws.recv(timeout=5)  # the wallboard's first message: the socket is open
    wait_for(lambda: "WSDISCONNECT" in served.log(), 10, "the socket's close in the log")

    log = served.log()
    for line in [
        '"GET /wallboard/[redacted]/" 200',
        '"GET /wallboard/[redacted]/" 404',
        '"POST /hooks/voipnow/[redacted]/" 200',
        "WSCONNECT /ws/wallboard/[redacted]/",
        "Not Found: /wallboard/[redacted]/",
    ]:
        assert line in log, line
    assert token not in log
    assert secret not in log

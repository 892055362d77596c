"""``manage.py voipnow_check`` against the emulator over real HTTP, playing VoipNow 3 and 5: the
table an admin reads before going live, and its exit status."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.management import CommandError, call_command

from tests.calls.uapi.contract_support import EmulatorServer
from tests.support.ports import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=[5, 3], ids=["voipnow5", "voipnow3"])
def voipnow(request: pytest.FixtureRequest, settings: Any, world: Any) -> Iterator[int]:
    """The emulator on a real port, playing one version, with one live Acme call; the settings
    point at it and name the same version."""
    server = EmulatorServer(voipnow=request.param)
    url = server.start()
    try:
        httpx.post(f"{url}/_emulator/calls", json={"queue": "0001*100"}, timeout=5)
        settings.UAPI_BASE_URL = url
        settings.VOIPNOW_VERSION = {5: "5.6", 3: "3.5"}[request.param]
        # Nothing answers there: the hook row is degraded, which does not fail the check.
        settings.CALLBOARD_PUBLIC_URL = f"http://127.0.0.1:{free_port()}"
        yield int(request.param)
    finally:
        server.stop()


def table() -> dict[str, tuple[str, str]]:
    """The check's rows: its name, its result, what it found."""
    out = io.StringIO()
    call_command("voipnow_check", stdout=out)
    rows = {}
    for line in out.getvalue().splitlines()[1:-1]:
        check, result, detail = [part.strip() for part in line.split("  ") if part.strip()][:3]
        rows[check] = (result, detail)
    return rows


def test_the_table_says_what_each_version_can_do(voipnow: int) -> None:
    rows = table()
    assert rows["token and List PhoneCalls"][0] == "ok"
    assert rows["organizations seen"] == ("ok", "calls of Acme (1 calls); no call now of Globex")
    assert rows["page size"][0] == "ok"
    events = rows["Call Event types"]
    assert events[0] == "ok"
    if voipnow == 5:
        assert "accepted dial_in, dial_out, hangup, answer_incoming, answer_outgoing" in events[1]
        assert rows["modes"] == ("ok", "VoipNow 5.6: barge, whisper, listen")
    else:
        assert "accepted dial_in, dial_out, hangup;" in events[1]
        assert "refused answer_incoming (pcet_type_invalid)" in events[1]
        assert rows["modes"][1].startswith("VoipNow 3.5: barge, whisper; not listen")
    assert rows["Call Event hook"][0] == "degraded"
    assert "<secret>" in rows["Call Event hook"][1]


def test_it_leaves_no_test_registration_behind(voipnow: int, settings: Any) -> None:
    table()
    state = httpx.get(f"{settings.UAPI_BASE_URL}/_emulator/state", timeout=5).json()
    assert state["events"]["registrations"] == 0


def test_it_exits_non_zero_when_the_live_page_cannot_work(voipnow: int, settings: Any) -> None:
    settings.UAPI_CLIENT_SECRET = "not-the-secret"
    with pytest.raises(CommandError, match="cannot work"):
        table()


def test_voipnow_events_registers_lists_and_removes_exactly_ours(
    voipnow: int, settings: Any
) -> None:
    base = settings.UAPI_BASE_URL
    token = httpx.post(
        f"{base}/oauth/token.php",
        data={
            "grant_type": "client_credentials",
            "client_id": "demo-app",
            "client_secret": "demo-secret",
        },
        timeout=5,
    ).json()["access_token"]
    theirs = httpx.post(
        f"{base}/uapi/extensions/@me/0001*100/phoneCallEvents",
        json={"type": "0", "method": "1", "url": "http://crm.test/", "note": "CRM", "status": "1"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert theirs.is_success

    def run(*args: str) -> str:
        out = io.StringIO()
        call_command("voipnow_events", *args, stdout=out)
        return out.getvalue()

    registered = run("--register")
    expected = "registered" if voipnow == 5 else "refused pcet_type_invalid"
    assert f"0001*100 type 4: {expected}" in registered
    listed = run()
    assert "0001*100 type 0" in listed
    assert "crm.test" not in listed
    assert settings.CALLBOARD_HOOK_SECRET not in listed
    removed = run("--remove")
    watched = removed.count("removed ")
    assert watched > 0
    state = httpx.get(f"{base}/_emulator/state", timeout=5).json()
    assert state["events"]["registrations"] == 1  # theirs, only

"""The emulator as a real server: uvicorn on a free 127.0.0.1 port, plain HTTP."""

from __future__ import annotations

import httpx
import pytest

from calls.uapi.emulator import create_app
from tests.support.servers import serving
from tests.support.waiting import wait_until


async def test_it_serves_the_uapi_over_real_http() -> None:
    app = create_app(speed=20)
    emu = app.state.emulator
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=5) as http:
        token = await http.post(
            "/oauth/token.php",
            data={
                "grant_type": "client_credentials",
                "client_id": "demo-app",
                "client_secret": "demo-secret",
            },
        )
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        created = await http.post("/_emulator/calls", json={"queue": "0001*100"})
        assert created.status_code == 201
        call_id = created.json()["id"]
        assert created.json()["links"]["self"].startswith(url)
        await wait_until(lambda: emu.calls[call_id].answered is not None)
        listed = await http.get("/unifiedapi/phoneCalls/@me/@self", headers=auth)
        assert [e["id"] for e in listed.json()[0]["entry"]] == [call_id]
        barged = await http.put(
            f"/uapi/phoneCalls/@me/0001*201/{call_id}",
            json={"action": "BargeIn", "sendCallTo": "0001*024", "phoneCallViewId": "01"},
            headers=auth,
        )
        assert barged.status_code == 202
        assert (await http.get("/_emulator/rings")).json()[0]["phoneCallId"] == call_id

        await http.post("/_emulator/faults", json={"path": "/uapi", "kind": "drop", "times": 1})
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/uapi/phoneCalls/@me/@self", headers=auth)

        await http.post("/_emulator/faults", json={"path": "/uapi", "kind": "timeout", "times": 1})
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/uapi/phoneCalls/@me/@self", headers=auth, timeout=0.3)

        after = await http.get("/uapi/phoneCalls/@me/@self", headers=auth)
        assert after.status_code == 200
    await emu.stop()

"""Fixtures for the emulator's own tests, on top of tests/conftest.py's ``emulator_app`` and
``emulator``: a plain httpx client talking to the app through ASGITransport, and a token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from tests.conftest import EMULATOR_URL
from tests.support.servers import serving
from tests.support.waiting import wait_until

# The contract suite's fixtures (test_contract.py): its target, client, cleanup tracker, the
# emulator's control API and a Call Event receiver.
from .contract_support import (  # noqa: F401
    call_event_receiver,
    contract_target,
    control,
    made,
    voipnow,
)

# The address the in-process emulator writes into its links.
BASE = EMULATOR_URL

__all__ = ["BASE", "get_token", "serving", "wait_until"]


@pytest.fixture
async def http(emulator_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client on the emulator: for tests of the emulator's own API, below our
    UapiClient."""
    transport = httpx.ASGITransport(app=emulator_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def get_token(http: httpx.AsyncClient, client_id: str = "demo-app") -> str:
    secret = {"demo-app": "demo-secret"}.get(client_id, f"{client_id}-secret")
    response = await http.post(
        "/oauth/token.php",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
async def auth(http: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await get_token(http)}"}

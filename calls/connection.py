"""The process's UAPI client, built from settings when first needed."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterator

from django.conf import settings

from calls.uapi.budget import RequestBudget
from calls.uapi.client import UapiClient

# One client per event loop: an httpx.AsyncClient must not be shared across loops, and
# keeping it alive keeps its connections and its OAuth token.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, UapiClient] = (
    weakref.WeakKeyDictionary()
)


def uapi_client() -> UapiClient:
    """The UapiClient of the running event loop, talking to ``settings.UAPI_BASE_URL``.

    Raises RuntimeError outside a running event loop.
    """
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = UapiClient(
            settings.UAPI_BASE_URL,
            settings.UAPI_CLIENT_ID,
            settings.UAPI_CLIENT_SECRET,
            budget=RequestBudget(settings.CALLBOARD_UAPI_MAX_PER_MINUTE),
        )
        _clients[loop] = client
    return client


@contextlib.contextmanager
def use_uapi_client(client: UapiClient) -> Iterator[UapiClient]:
    """Within the block, ``uapi_client()`` on the running loop answers ``client`` (one that
    talks to another VoipNow, or to an emulator in process); afterwards the loop's previous
    client, if it had one, is back. Yields ``client``; closing it stays with the caller.

    Raises RuntimeError outside a running event loop.
    """
    loop = asyncio.get_running_loop()
    previous = _clients.get(loop)
    _clients[loop] = client
    try:
        yield client
    finally:
        if previous is None:
            _clients.pop(loop, None)
        else:
            _clients[loop] = previous

"""The process's UAPI client, built from settings when first needed."""

from __future__ import annotations

import asyncio
import weakref

from django.conf import settings

from calls.uapi.client import UapiClient

# One client per event loop: an httpx.AsyncClient must not be shared across loops, and
# keeping it alive keeps its connections and its OAuth token.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, UapiClient] = (
    weakref.WeakKeyDictionary()
)


def uapi_client() -> UapiClient:
    """The UapiClient of the running event loop, talking to ``settings.UAPI_BASE_URL``."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = UapiClient(
            settings.UAPI_BASE_URL, settings.UAPI_CLIENT_ID, settings.UAPI_CLIENT_SECRET
        )
        _clients[loop] = client
    return client

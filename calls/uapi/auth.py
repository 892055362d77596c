"""OAuth 2.0 client credentials for the UAPI, as an ``httpx.Auth``.

The token request is yielded through the flow, so it goes through the client's transport with
the client's headers and timeouts, under the same overall deadline as the request it serves.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass

import httpx

from .errors import UapiAuthError, UapiUnavailable, describe_code, error_of, json_or_none
from .wire import ErrorCode

log = logging.getLogger(__name__)

# Renew the token this long before VoipNow says it expires, so a request never races expiry;
# a short-lived token is renewed after 90% of its life instead, not before every request.
TOKEN_RENEW_MARGIN = 60.0

# Headers that belong to one request's body or credentials, not to the client.
_OWN_HEADERS = frozenset(
    {b"authorization", b"content-length", b"content-type", b"transfer-encoding"}
)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    renew_at: float  # the clock's time after which a new token is fetched


class ClientCredentials(httpx.Auth):
    """Adds ``Authorization: Bearer`` with a token VoipNow grants this registered App.

    One token is shared by every request; concurrent requests wait for the one fetch. A 401 or
    403 answer is given before VoipNow did anything, so that request alone is sent again, once,
    with a fresh token; a second refusal is the caller's to raise.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token_url = httpx.URL(token_url)
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        # Requests between asking for a token and having one. A request that failed while in
        # here failed on the token; weak, so a request abandoned mid-fetch is not kept.
        self._waiting: weakref.WeakSet[httpx.Request] = weakref.WeakSet()

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Not supported: the token is shared through an asyncio lock.

        Raises RuntimeError always.
        """
        raise RuntimeError("ClientCredentials works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send ``request`` with a token, and once more with a fresh one if it is refused.

        Raises UapiUnavailable (the token request failed with a 5xx) and UapiAuthError (VoipNow
        refused the app's credentials). A token request that timed out or could not be sent
        raises httpx's error from the client; ``waiting_for_token`` tells it apart.
        """
        for attempt in (1, 2):
            self._waiting.add(request)
            async with self._lock:
                token = self._token
                if token is None or attempt == 2 or self._clock() >= token.renew_at:
                    answer = yield self._token_request(request)
                    await answer.aread()
                    token = self._token = self._read_token(answer)
            self._waiting.discard(request)
            request.headers["Authorization"] = f"Bearer {token.value}"
            response = yield request
            if response.status_code not in (401, 403) or attempt == 2:
                return
            log.info(
                "uapi %s %s answered %s; renewing the token once",
                request.method,
                request.url.path,
                response.status_code,
            )

    def waiting_for_token(self, request: httpx.Request) -> bool:
        """True when ``request`` was still waiting for its token, so a timeout or transport
        error raised while sending it belongs to the token request."""
        return request in self._waiting

    def _token_request(self, request: httpx.Request) -> httpx.Request:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            # Sent by VoipNow's own example clients; harmless where ignored.
            "type": "unifiedapi",
            "redirect_uri": "",
        }
        # The client's headers (User-Agent, Accept, ...) and timeouts, as the request carries
        # them: a request yielded by an auth flow does not pass through the client's defaults.
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in _OWN_HEADERS]
        return httpx.Request(
            "POST", self._token_url, headers=headers, data=form, extensions=request.extensions
        )

    def _read_token(self, response: httpx.Response) -> _Token:
        if response.status_code >= 500:
            # Raised before the request it serves is sent: that one never left.
            raise UapiUnavailable(
                f"VoipNow failed the token request ({response.status_code}).",
                status=response.status_code,
                sent=False,
            )
        body = json_or_none(response)
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            code, detail = error_of(response)
            raise UapiAuthError(
                describe_code(code or ErrorCode.INVALID_CLIENT),
                status=response.status_code,
                code=code or ErrorCode.INVALID_CLIENT,
                detail=detail,
            )
        try:
            lifetime = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        margin = min(TOKEN_RENEW_MARGIN, lifetime / 10)
        return _Token(str(body["access_token"]), self._clock() + lifetime - margin)

"""The async UAPI client: the only code that speaks HTTP to VoipNow.

Every request goes through ``UapiClient._request``, which sets explicit timeouts and an overall
deadline and turns transport failures and non-2xx answers into ``calls.uapi.errors``; the OAuth
token and its single retry are ``calls.uapi.auth.ClientCredentials``, the client's ``httpx.Auth``.
Every path comes from ``calls.uapi.paths``, which refuses an id not of VoipNow's form
(UapiInvalidId, a UapiRejected) before a request exists.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from . import paths
from .auth import ClientCredentials
from .budget import RequestBudget
from .envelope import Collection, read_collection
from .errors import (
    UapiAnswerLost,
    UapiAuthError,
    UapiRejected,
    UapiUnavailable,
    describe_code,
    error_of,
    json_or_none,
)
from .types import (
    CallEventSubscription,
    CallPage,
    CallRecord,
    PhoneCall,
    PhoneCallAction,
    Presence,
    QueueAgent,
    UpdatedCall,
    WireFormatError,
)
from .wire import EXTENSION_SELF, TOKEN_PATH, USER_ME, ErrorCode

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(connect=3.0, read=10.0, write=5.0, pool=3.0)
# httpx's timeouts bound each operation; a server trickling bytes could still hold a request
# for ever, so every request also has an overall deadline.
DEFAULT_DEADLINE = 15.0
# VoipNow documents count up to 5000, but 4PSA's own client caps it at 4999 and a large page is
# one long request: lists are read 1000 at a time, following the pages.
PAGE_SIZE = 1000
# A listing stops after this many pages (200,000 entries) even if the server says there are
# more: a server that keeps answering "more" must not keep the watcher in one poll for ever.
MAX_PAGES = 200
# Transport failures that happen before any byte of the request is written: no connection
# (refused, unreachable, DNS, TLS handshake), no free connection, or a URL httpx cannot send.
# Every other failure (a write or read error, a connection closed under the answer, a read
# timeout, the overall deadline) may come after VoipNow has the request, so it may have acted.
# A kept-alive connection the server closed just before the request counts as the latter:
# nothing says which bytes it saw.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)


class UapiClient:
    """Talks to one VoipNow server as one registered App (OAuth 2.0 client credentials).

    Use as ``async with UapiClient(...) as uapi:`` or call ``aclose()``. ``transport`` lets
    tests run the emulator in process (``httpx.ASGITransport``).
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        budget: RequestBudget | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        # Each request, its token fetch included, must be answered within this many seconds.
        self.deadline = deadline
        self._auth = ClientCredentials(
            f"{self.base_url}{TOKEN_PATH}", client_id, client_secret, clock=clock
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=self._auth,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "Callboard/0.1"},
        )

    async def __aenter__(self) -> UapiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- the choke point ---------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        paced: bool = True,
        deadline: float | None = None,
    ) -> tuple[int, Any]:
        """Send one request; answer ``(status, parsed JSON or None)`` for any 2xx.

        ``paced`` requests wait for the request budget, if the client has one; the others
        (the ones a person is waiting for: PhoneCall actions, hang-ups) are only counted.
        ``deadline`` shortens the client's overall deadline for this request (token included).

        Nothing is retried here (the token's own retry aside, see ClientCredentials): a PUT
        that timed out may have rung a phone.

        Raises UapiUnavailable (transport failure, timeout, 5xx, unreadable body; for the token
        request too) with ``sent`` False when the request never left, UapiAnswerLost (a
        UapiUnavailable) when it was sent and its answer was cut off, late or not JSON,
        UapiAuthError (token refused twice, or the app's credentials refused), UapiRejected
        (any other 4xx, with its UAPI code).
        """
        if self.budget is not None:
            if paced:
                await self.budget.spend()
            else:
                self.budget.count()
        request = self._http.build_request(method, path, params=params, json=json)
        limit = self.deadline if deadline is None else min(deadline, self.deadline)
        try:
            async with asyncio.timeout(limit):
                response = await self._http.send(request)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise self._failure(request, exc) from exc
        status = response.status_code
        # 501 request_not_implemented is a refusal, not an outage: this server does not do
        # that request, and asking again later gets the same answer.
        if status >= 500 and status != 501:
            code, message = error_of(response)
            raise UapiUnavailable(
                f"VoipNow failed ({status}{', ' + code if code else ''}). {message}".strip(),
                status=status,
            )
        if status >= 400:
            code, message = error_of(response)
            error_class = UapiAuthError if status in (401, 403) else UapiRejected
            raise error_class(
                describe_code(code, message),
                status=status,
                code=code or str(status),
                detail=message,
            )
        if status == 204 or not response.content:
            return status, None
        body = json_or_none(response)
        if body is None:
            # A 2xx status came back, but not its body: whatever VoipNow said is lost.
            raise UapiAnswerLost("VoipNow answered with a body that is not JSON.", status=status)
        return status, body

    def _failure(self, request: httpx.Request, exc: Exception) -> UapiUnavailable:
        """What a transport failure or timeout of ``request`` means: never sent, or sent with
        its answer lost."""
        timed_out = isinstance(exc, httpx.TimeoutException | TimeoutError)
        name = exc.__class__.__name__
        if self._auth.waiting_for_token(request):
            # The token request failed: the request itself never left.
            if timed_out:
                return UapiUnavailable(
                    "VoipNow did not answer the token request in time.", timed_out=True, sent=False
                )
            return UapiUnavailable(f"VoipNow could not be reached: {name}.", sent=False)
        if isinstance(exc, _NOT_SENT):
            return UapiUnavailable(
                f"VoipNow could not be reached ({name}).", timed_out=timed_out, sent=False
            )
        if timed_out:
            return UapiAnswerLost("VoipNow did not answer in time.", timed_out=True)
        return UapiAnswerLost(f"VoipNow's answer was lost ({name}).")

    # ---- PhoneCalls --------------------------------------------------------------------

    async def create_simple_call(
        self,
        *,
        extension: str,
        source: Sequence[str],
        destination: Sequence[str],
        caller_id: str | None = None,
        wait_for_pickup: int | None = None,
        call_duration: int | None = None,
        user_id: str = USER_ME,
    ) -> PhoneCall:
        """Create Simple PhoneCalls: VoipNow rings ``source``, then calls ``destination``,
        charging ``extension`` (a phone terminal of the user).

        Returns the new PhoneCall as VoipNow answers it (its id and links; views may be
        absent). Raises UapiRejected with the UAPI code when VoipNow refuses it (for example
        ``pc_timeout_invalid``), UapiUnavailable when it could not be asked or did not answer:
        then the call may exist, so do not blindly try again.
        """
        view: dict[str, Any] = {"source": list(source), "destination": list(destination)}
        if caller_id is not None:
            view["callerId"] = caller_id
        params: dict[str, Any] = {}
        if wait_for_pickup is not None:
            params["waitForPickup"] = wait_for_pickup
        if call_duration is not None:
            params["callDuration"] = call_duration
        _, body = await self._request(
            "POST",
            paths.simple_calls(user_id),
            params=params,
            json={"extension": extension, "phoneCallView": [view]},
        )
        # Array<PhoneCall>; tolerate the collection envelope and a bare object as well.
        if isinstance(body, dict) and isinstance(body.get("entry"), list):
            body = body["entry"]
        first = body[0] if isinstance(body, list) and body else body
        if isinstance(first, dict) and isinstance(first.get("error"), dict):
            # 4PSA's own client reads a refusal from the first element of a 200 answer.
            code = str(first["error"].get("code") or "")
            message = str(first["error"].get("message") or "")
            raise UapiRejected(describe_code(code, message), status=200, code=code, detail=message)
        try:
            return PhoneCall.from_json(first)
        except WireFormatError as exc:
            raise UapiUnavailable(
                f"VoipNow accepted the call but answered without a readable PhoneCall: {exc}."
            ) from exc

    async def list_calls_page(
        self,
        *,
        user_id: str = USER_ME,
        extension: str = EXTENSION_SELF,
        count: int = PAGE_SIZE,
        start_index: int = 0,
        parse: Callable[[Any], PhoneCall] = PhoneCall.from_json,
    ) -> CallPage:
        """One page of List PhoneCalls, each entry read by ``parse``.

        Returns the page's calls, VoipNow's total and its next link. An entry ``parse`` cannot
        read (WireFormatError) is logged and skipped, so one bad call never hides the others.
        Raises UapiUnavailable, UapiRejected and UapiAuthError as every request does.
        """
        page = await self._page(
            paths.phone_calls(user_id, extension), "List PhoneCalls", count, start_index
        )
        return CallPage(
            calls=_parsed(page.entries, parse, "PhoneCall"),
            total=page.total,
            next_url=page.next_url,
        )

    async def list_calls(
        self,
        *,
        user_id: str = USER_ME,
        extension: str = EXTENSION_SELF,
        page_size: int = PAGE_SIZE,
        parse: Callable[[Any], PhoneCall] = PhoneCall.from_json,
    ) -> tuple[PhoneCall, ...]:
        """Every live call visible to the app (or to ``extension``), following pages until
        VoipNow has no more.

        Returns the calls ``parse`` made of the entries it could read, each once. Raises as
        list_calls_page does.
        """
        entries = await self._all(
            paths.phone_calls(user_id, extension), "List PhoneCalls", page_size
        )
        return _parsed(entries, parse, "PhoneCall")

    async def get_call(
        self, call_id: str, *, user_id: str = USER_ME, extension: str = EXTENSION_SELF
    ) -> PhoneCall | None:
        """The live call with this id, or None when VoipNow no longer has it.

        An ended call is answered differently by different servers: 204, 200 with
        ``totalResults`` 0 and no ``entry``, an empty collection wrapped in an array, or 400
        ``pc_phonecall_invalid`` (the BargeIn page's code for an id that is no call); 404 is
        taken the same way. All of them mean "ended", never "VoipNow is down". Raises
        UapiInvalidId (a UapiRejected: nothing sent) for an id not of VoipNow's form,
        UapiUnavailable, UapiRejected (other codes) and UapiAuthError.
        """
        path = paths.phone_call(user_id, extension, call_id)
        try:
            _, body = await self._request("GET", path)
        except UapiAuthError:
            raise
        except UapiRejected as exc:
            if exc.code == ErrorCode.PC_PHONECALL_INVALID or exc.status == 404:
                return None
            raise
        entries = read_collection(body, "the PhoneCall lookup").entries
        entry = next((e for e in entries if isinstance(e, dict) and e.get("id") == call_id), None)
        if entry is None and entries:
            entry = entries[0]
        if entry is None:
            return None
        try:
            return PhoneCall.from_json(entry)
        except WireFormatError as exc:
            raise UapiUnavailable(f"VoipNow answered with an unreadable PhoneCall: {exc}.") from exc

    async def _page(
        self,
        path: str,
        what: str,
        count: int,
        start_index: int,
        params: Mapping[str, Any] | None = None,
        *,
        paced: bool = True,
        deadline: float | None = None,
    ) -> Collection:
        _, body = await self._request(
            "GET",
            path,
            params={**(params or {}), "count": count, "startIndex": start_index},
            paced=paced,
            deadline=deadline,
        )
        return read_collection(body, what)

    async def _all(
        self,
        path: str,
        what: str,
        page_size: int,
        params: Mapping[str, Any] | None = None,
        *,
        paced: bool = True,
        deadline: float | None = None,
    ) -> list[Any]:
        """Every entry of a paged collection, each id once; ``paced`` and ``deadline`` apply
        to each page's request.

        Follows pages while VoipNow says there are more (``next``, or ``totalResults`` above
        what was read) or, when it says neither, while pages come back full. A server that
        ignores ``startIndex`` answers the same page again: its repeated entries are dropped
        and the listing ends, as it does after MAX_PAGES.
        """
        entries: list[Any] = []
        seen: set[str] = set()
        start = 0
        for _ in range(MAX_PAGES):
            page = await self._page(
                path, what, page_size, start, params, paced=paced, deadline=deadline
            )
            fresh = 0
            for entry in page.entries:
                key = str(entry.get("id")) if isinstance(entry, dict) and "id" in entry else None
                if key is not None:
                    if key in seen:
                        continue
                    seen.add(key)
                entries.append(entry)
                fresh += 1
            start += len(page.entries)
            if page.next_url is not None or page.total is not None:
                more = page.next_url is not None or start < (page.total or 0)
            else:
                more = len(page.entries) >= page_size
            if not fresh or not more:
                break
        return entries

    async def update_call(
        self, *, user_id: str, extension: str, call_id: str, action: PhoneCallAction
    ) -> UpdatedCall:
        """PUT a PhoneCallAction (BargeIn, Whisper, Monitor, ...) on a call.

        Returns the UpdatedCall VoipNow answers (a 2xx whose JSON is not the documented
        shape is still an acceptance). Raises UapiRejected with the UAPI code when VoipNow
        refuses it (UapiInvalidId, before sending, for a segment not of VoipNow's form);
        UapiUnavailable when it could not be asked (``sent`` False: nothing happened) or failed
        (5xx); UapiAnswerLost when the PUT went out and its answer was cut off, late or not
        JSON: the phone may be ringing.
        """
        path = paths.phone_call(user_id, extension, call_id)
        _, body = await self._request("PUT", path, json=action.to_json(), paced=False)
        if body is None:
            return UpdatedCall(id=call_id, extension=extension)
        try:
            return UpdatedCall.from_json(body)
        except WireFormatError:
            # The request was accepted (2xx); an odd body does not undo that.
            log.warning("PUT %s accepted with an unexpected body", path)
            return UpdatedCall(id=call_id, extension=extension)

    async def hang_up(
        self, *, call_id: str, user_id: str = USER_ME, extension: str = EXTENSION_SELF
    ) -> bool:
        """DELETE the call; True when VoipNow hung something up."""
        path = paths.phone_call(user_id, extension, call_id)
        status, _ = await self._request("DELETE", path, paced=False)
        return status != 204

    # ---- CDR -----------------------------------------------------------------------------

    async def list_cdr(
        self, *, start: datetime, end: datetime, owner_id: str | None = None
    ) -> tuple[CallRecord, ...]:
        """The records (List CDR) of the calls that started between ``start`` and ``end``
        (aware datetimes), seen by the app's account or by ``owner_id`` (an account below
        it), every page read.

        Returns the records it could read, each once, in VoipNow's order (by start);
        unreadable ones are logged and skipped. Raises UapiRejected with code
        ``request_not_implemented`` (501) on a server without CDR (VoipNow 3.x): callers take
        that as "no call history here". Raises UapiUnavailable and UapiAuthError as every
        request does.
        """
        entries = await self._all(
            paths.cdr(owner_id),
            "List CDR",
            PAGE_SIZE,
            params={"startDate": _cdr_date(start), "endDate": _cdr_date(end)},
        )
        return _parsed(entries, CallRecord.from_json, "call record")

    # ---- PhoneCallEvents ---------------------------------------------------------------

    async def list_call_events(
        self, *, extension: str, user_id: str = USER_ME
    ) -> tuple[CallEventSubscription, ...]:
        """Every Call Event registration of an extension, following pages (VoipNow lists 20
        a page unless asked for more). Unreadable entries are logged and skipped."""
        entries = await self._all(
            paths.call_events(user_id, extension), "List PhoneCallEvents", PAGE_SIZE
        )
        return _parsed(entries, CallEventSubscription.from_json, "PhoneCallEvent")

    async def create_call_event(
        self,
        *,
        extension: str,
        type: int,
        url: str,
        method: int = 1,
        note: str = "",
        user_id: str = USER_ME,
    ) -> str:
        """Register a Call Event callback; returns its id."""
        _, body = await self._request(
            "POST",
            paths.call_events(user_id, extension),
            json={
                "type": str(type),
                "method": str(method),
                "url": url,
                "note": note,
                "status": "1",
            },
        )
        if isinstance(body, list) and body:
            body = body[0]
        if not isinstance(body, dict) or "id" not in body:
            raise UapiUnavailable("VoipNow did not return the id of the new Call Event.")
        return str(body["id"])

    async def delete_call_event(
        self, *, extension: str, type: int, event_id: str, user_id: str = USER_ME
    ) -> None:
        """Remove one Call Event registration."""
        await self._request("DELETE", paths.call_event(user_id, extension, type, event_id))

    # ---- Extension services: QueueAgents, Presence -------------------------------------

    async def list_queue_agents(
        self, queue: str, *, user_id: str = USER_ME, page_size: int = PAGE_SIZE
    ) -> tuple[QueueAgent, ...]:
        """Every agent of the queue extension ``queue`` with its status there, following
        pages.

        Unreadable entries are logged and skipped. Raises UapiRejected (``extension_invalid``
        for an extension that is no queue of the user), UapiUnavailable and UapiAuthError as
        every request does.
        """
        entries = await self._all(paths.queue_agents(user_id, queue), "List QueueAgents", page_size)
        # Agents carry no id, so the pager cannot drop a page a server answered twice: keep
        # the first of each number.
        agents: dict[str, QueueAgent] = {}
        for agent in _parsed(entries, QueueAgent.from_json, "queue agent"):
            agents.setdefault(agent.agent_number, agent)
        return tuple(agents.values())

    async def presence(
        self,
        extension: str = EXTENSION_SELF,
        *,
        user_id: str = USER_ME,
        paced: bool = True,
        deadline: float | None = None,
    ) -> tuple[Presence, ...]:
        """The presence of ``extension``, or of every extension of the user with ``@self``:
        whether each is online, ringing or busy, and whether its phone is registered.
        ``paced`` and ``deadline`` are ``_request``'s: a check a person waits for is unpaced
        and short.

        List Presence answers a collection even for one extension. Unreadable entries are
        logged and skipped. Raises UapiRejected, UapiUnavailable and UapiAuthError as every
        request does.
        """
        entries = await self._all(
            paths.presence(user_id, extension),
            "List Presence",
            PAGE_SIZE,
            paced=paced,
            deadline=deadline,
        )
        return _parsed(entries, Presence.from_json, "presence")


def _cdr_date(moment: datetime) -> str:
    """A CDR date filter: UTC with a ``Z``, the Data Types page's form (``2015-01-23T04:56:22Z``);
    a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _parsed(entries: Sequence[Any], parse: Callable[[Any], T], what: str) -> tuple[T, ...]:
    """``parse`` of each entry; one that cannot be read is logged and skipped, so one bad
    entry never hides the others."""
    out: list[T] = []
    for entry in entries:
        try:
            out.append(parse(entry))
        except WireFormatError as exc:
            log.warning("skipping an unreadable %s: %s", what, exc)
    return tuple(out)

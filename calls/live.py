"""The live path: the watcher that keeps every Organization's picture of live calls up to date.

The watcher polls List PhoneCalls (and, when VoipNow sends Call Events, refreshes the calls
they name at once), diffs against its last snapshot, renders each changed row once, stores the
rows in the cache (where consumers read the snapshot for a new screen) and broadcasts only what
changed to the Organization's group.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, BaseCache, caches
from django.core.signals import setting_changed
from django.template.loader import render_to_string

from calls.models import Extension, Organization
from calls.rows import Directory, render_gone, render_row
from calls.selectors import LiveCall, LiveView, call_key
from calls.uapi.client import UapiClient
from calls.uapi.errors import UapiError
from calls.uapi.types import PhoneCall
from calls.uapi.wire import CallEventType

log = logging.getLogger(__name__)

STATUS_GROUP = "calls.status"
WATCHER_CHANNEL = "callboard.watcher"
STATUS_TEMPLATE = "calls/live.html#live-status"
_KEY = "live:v1"
# Rows outlive a dead watcher long enough for a new one to take over and rewrite them.
ROW_TTL = 24 * 3600
HEARTBEAT_EVERY = 5.0
# VoipNow sends several Call Events for one change (the queue's, the agent's): wait this long
# for the rest, so a change is one refresh and one broadcast to every screen, not several.
COALESCE_WINDOW = 0.01
# More calls named at once than this: one List PhoneCalls is cheaper than one GET each.
TARGETED_LIMIT = 20
BACKOFF_MAX = 30.0


def org_group(org_id: int) -> str:
    return f"calls.org.{org_id}"


def _index_key(org_id: int) -> str:
    return f"{_KEY}:org:{org_id}:index"


def _row_key(org_id: int, call_id: str) -> str:
    return f"{_KEY}:org:{org_id}:row:{call_id}"


STATUS_KEY = f"{_KEY}:status"


# ---- reading the snapshot (consumers) ----------------------------------------------------


class _SharedCache:
    """The live store, one client per process.

    ``django.core.cache.cache`` is a client per async context: each websocket consumer got its
    own, and with Redis its own connection pool and TCP connection, so 2,000 screens held
    2,000 Redis connections and every new screen paid a connect. One client's pool is shared
    by all of them (redis-py pools are thread-safe).
    """

    def __init__(self) -> None:
        self._cache: BaseCache | None = None

    def __getattr__(self, name: str) -> Any:
        if self._cache is None:
            self._cache = caches.create_connection(DEFAULT_CACHE_ALIAS)
        return getattr(self._cache, name)

    def reset(self) -> None:
        """Forget the client (settings changed, in tests)."""
        self._cache = None


cache = _SharedCache()


def _reset_cache(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        cache.reset()


setting_changed.connect(_reset_cache)


async def snapshot(org_id: int) -> tuple[int, list[str]]:
    """``(version, rendered rows)`` of an Organization's live calls, in arrival order."""
    version, rows, _ = await _read_snapshot(org_id, None)
    return version, rows or []


async def snapshot_and_status(
    org_id: int, unless_version: int | None = None
) -> tuple[int, list[str] | None, str]:
    """The snapshot and the freshness banner, read together: what a new screen needs.

    The rows are None when the snapshot is still at ``unless_version`` (the caller has them).
    """
    version, rows, status = await _read_snapshot(org_id, unless_version)
    return version, rows, render_status(status)


async def _read_snapshot(
    org_id: int, unless_version: int | None
) -> tuple[int, list[str] | None, dict[str, Any] | None]:
    # Django's cache has no async Redis client: its a* methods each hop to the one thread that
    # also runs every database query. One hop to any worker thread for the three reads keeps a
    # burst of screens connecting from queueing behind the database.
    return await sync_to_async(_read_snapshot_sync, thread_sensitive=False)(org_id, unless_version)


def _read_snapshot_sync(
    org_id: int, unless_version: int | None
) -> tuple[int, list[str] | None, dict[str, Any] | None]:
    found = cache.get_many([_index_key(org_id), STATUS_KEY])
    status = found.get(STATUS_KEY)
    index = found.get(_index_key(org_id))
    if not index:
        return 0, [], status
    version, ids = index["version"], index["ids"]
    if version == unless_version:
        return version, None, status
    rows = cache.get_many([_row_key(org_id, call_id) for call_id in ids])
    return version, [rows[key] for key in (_row_key(org_id, i) for i in ids) if key in rows], status


def render_status(status: dict[str, Any] | None) -> str:
    return render_to_string(STATUS_TEMPLATE, {"status": status or {"state": "starting"}})


# ---- the watcher -------------------------------------------------------------------------


@dataclass
class _OrgState:
    org_id: int
    version: int = 0
    calls: dict[str, PhoneCall] = field(default_factory=dict)
    # Ids a previous watcher published: screens may still show them.
    inherited: set[str] = field(default_factory=set)
    # A publish failed half-way (Redis down): the store and the screens may miss anything.
    dirty: bool = False


class Watcher:
    """One active instance per deployment (see ``LeaderLock``)."""

    def __init__(
        self,
        uapi: UapiClient,
        *,
        channel_layer: Any,
        poll_interval: float,
        call_events: bool,
        hook_url: str | None = None,
    ) -> None:
        self.uapi = uapi
        self.layer = channel_layer
        self.poll_interval = poll_interval
        self.call_events = call_events and hook_url is not None
        self.hook_url = hook_url
        self._orgs: dict[int, _OrgState] = {}
        self._org_by_voipnow: dict[str, int] = {}
        self._directories: dict[int, Directory] = {}
        self._directory_loaded = 0.0
        self._apply_lock = asyncio.Lock()
        self._fetch_seq = 0
        self._touched: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._pending_ids: set[str] = set()
        self._events_registered = False
        self._status: dict[str, Any] = {"state": "starting"}
        self._last_heartbeat = 0.0
        self.cycles = 0

    # -- directory of organizations and extension labels --

    async def load_directory(self) -> None:
        orgs, labels = await sync_to_async(_read_directory)()
        self._org_by_voipnow = orgs
        self._directories = {org_id: Directory(labels=names) for org_id, names in labels.items()}
        self._directory_loaded = time.monotonic()
        for org_id in orgs.values():
            if org_id not in self._orgs:
                self._orgs[org_id] = await _inherit(org_id)

    # -- refreshing --

    async def refresh_all(self) -> None:
        """Poll every live call and publish the differences. Raises UapiError."""
        if time.monotonic() - self._directory_loaded > 30:
            await self.load_directory()
        self._fetch_seq += 1
        seq = self._fetch_seq
        calls = await self.uapi.list_calls()
        async with self._apply_lock:
            await self._apply_full(calls, seq)

    async def refresh_calls(self, call_ids: Iterable[str]) -> None:
        """Refresh the named calls only (after Call Events). Raises UapiError."""
        ids = sorted(set(call_ids))
        if not ids:
            return
        if len(ids) > TARGETED_LIMIT:
            await self.refresh_all()
            return
        self._fetch_seq += 1
        seq = self._fetch_seq
        found = await asyncio.gather(*(self.uapi.get_call(i) for i in ids))
        async with self._apply_lock:
            await self._apply_some(dict(zip(ids, found, strict=True)), seq)

    def _org_of(self, call: PhoneCall) -> int | None:
        return self._org_by_voipnow.get(call.owner_id)

    async def _apply_full(self, calls: Iterable[PhoneCall], seq: int) -> None:
        fresh: dict[int, dict[str, PhoneCall]] = {org_id: {} for org_id in self._orgs}
        for call in calls:
            org_id = self._org_of(call)
            if org_id is not None:
                fresh.setdefault(org_id, {})[call.id] = call
        for org_id, now in fresh.items():
            state = self._orgs.get(org_id) or await _inherit(org_id)
            self._orgs[org_id] = state
            # A call refreshed by an event after this poll started is newer than the poll.
            for call_id, prev in state.calls.items():
                if self._touched.get(call_id, 0) > seq:
                    now[call_id] = prev
            for call_id in list(now):
                if self._touched.get(call_id, 0) > seq and call_id not in state.calls:
                    del now[call_id]
            await self._publish(state, now)
        self._touched = {k: v for k, v in self._touched.items() if v > seq}
        self.cycles += 1
        await self._set_status("ok")

    async def _apply_some(self, found: dict[str, PhoneCall | None], seq: int) -> None:
        by_org: dict[int, dict[str, PhoneCall | None]] = {}
        for call_id, call in found.items():
            self._touched[call_id] = seq
            if call is not None:
                org_id = self._org_of(call)
                if org_id is None:
                    continue
            else:
                org_id = next((o for o, s in self._orgs.items() if call_id in s.calls), None)
                if org_id is None:
                    continue
            by_org.setdefault(org_id, {})[call_id] = call
        for org_id, changes in by_org.items():
            state = self._orgs.setdefault(org_id, _OrgState(org_id))
            now = dict(state.calls)
            for call_id, call in changes.items():
                if call is None:
                    now.pop(call_id, None)
                else:
                    now[call_id] = call
            await self._publish(state, now)

    async def _publish(self, state: _OrgState, now: dict[str, PhoneCall]) -> None:
        """Diff ``now`` against the last snapshot; store and broadcast what changed.

        If storing or sending fails half-way (Redis down), the next publish of this
        Organization sends everything again, so no screen and no snapshot stays behind.
        """
        if state.dirty:
            state.inherited |= set(state.calls)
            state.calls = {}
        prev, inherited = state.calls, state.inherited
        changed = [c for cid, c in now.items() if prev.get(cid) is not c and prev.get(cid) != c]
        removed = [cid for cid in prev.keys() | inherited if cid not in now]
        if not changed and not removed and state.version and not state.dirty:
            return
        directory = self._directories.get(state.org_id) or Directory(labels={})
        rows = {c.id: render_row(c, directory) for c in changed}
        # Versions grow with time, so a watcher that starts afresh (Redis lost its data, say)
        # never reuses a version screens have already seen.
        version = max(state.version + 1, time.time_ns() // 1000)
        state.dirty = True
        entries: dict[str, Any] = {_row_key(state.org_id, cid): html for cid, html in rows.items()}
        for call in changed:
            entries[call_key(call.id)] = _live_call(call, state.org_id, directory).to_cache()
        unchanged: set[str] = set()
        if inherited:
            # Taking over from another watcher: screens already show the rows it published.
            keys = {_row_key(state.org_id, cid): cid for cid in rows if cid in inherited}
            shown = await cache.aget_many(list(keys))
            unchanged = {keys[k] for k, html in shown.items() if html == rows[keys[k]]}
        # VoipNow lists calls by publish time; new calls from events come last: keep that order.
        entries[_index_key(state.org_id)] = {"version": version, "ids": list(now)}
        gone = [_row_key(state.org_id, cid) for cid in removed] + [call_key(c) for c in removed]
        await _store(entries, gone)
        sent = [html for cid, html in rows.items() if cid not in unchanged]
        if sent or removed:
            await self.layer.group_send(
                org_group(state.org_id),
                {
                    "type": "calls.changes",
                    "version": version,
                    "prev": state.version,
                    "html": "".join(sent) + "".join(render_gone(cid) for cid in removed),
                },
            )
        state.calls, state.inherited, state.version, state.dirty = now, set(), version, False

    # -- freshness --

    async def _set_status(self, state: str, error: str = "") -> None:
        now = datetime.now(UTC).isoformat()
        prev = self._status
        status: dict[str, Any]
        if state == "ok":
            status = {"state": "ok", "as_of": now}
        else:
            status = {
                "state": state,
                "error": error,
                "as_of": prev.get("as_of"),
                "since": prev.get("since") if prev.get("state") == state else now,
            }
        heartbeat = (
            status["state"] != prev.get("state")
            or time.monotonic() - self._last_heartbeat >= HEARTBEAT_EVERY
        )
        self._status = status
        try:
            await cache.aset(STATUS_KEY, status, ROW_TTL)
            if heartbeat:
                self._last_heartbeat = time.monotonic()
                await self._check_store()
                await self.layer.group_send(
                    STATUS_GROUP,
                    {
                        "type": "calls.status",
                        "html": render_status(status),
                        # Lets every screen notice a change it missed (Redis restarted, say).
                        "versions": {str(o): s.version for o, s in self._orgs.items() if s.version},
                    },
                )
        except Exception as exc:  # Redis down: the heartbeat is lost, the watch goes on
            log.warning("could not publish the live status: %s", exc)

    async def _check_store(self) -> None:
        """Notice a store that lost what we published (Redis restarted without persistence)
        and publish everything again on the next cycle."""
        for org_id, state in self._orgs.items():
            if state.version and await cache.aget(_index_key(org_id)) is None:
                log.warning("the live store lost organization %s; republishing", org_id)
                state.dirty = True

    # -- Call Events --

    async def register_call_events(self) -> None:
        """Make sure every watched extension sends its Call Events to our hook; idempotent."""
        assert self.hook_url is not None
        numbers = await sync_to_async(_watched_extensions)()
        wanted = {int(t) for t in CallEventType}
        for number in numbers:
            existing = await self.uapi.list_call_events(extension=number)
            have = {e.type for e in existing if e.url == self.hook_url and e.status == 1}
            for event_type in sorted(wanted - have):
                await self.uapi.create_call_event(
                    extension=number, type=event_type, url=self.hook_url, method=1, note="Callboard"
                )
        self._events_registered = True
        log.info("call events registered on %d extensions", len(numbers))

    def call_event(self, call_id: str | None) -> None:
        """A Call Event arrived: refresh that call soon (or everything when it has no id)."""
        self._pending_ids.add(call_id or "*")
        self._wake.set()

    async def _listen_for_events(self) -> None:
        failures = 0
        while True:
            try:
                message = await self.layer.receive(WATCHER_CHANNEL)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The layer is down (Redis restarting): polling carries on meanwhile.
                failures += 1
                log.warning("cannot receive Call Events from the channel layer: %s", exc)
                await asyncio.sleep(min(BACKOFF_MAX, 0.5 * 2 ** min(failures, 6)))
                continue
            failures = 0
            if message.get("type") == "call.event":
                self.call_event(message.get("call_id"))

    # -- the loop --

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and refresh until ``stop`` is set; never raises for a bad or absent VoipNow."""
        await self.load_directory()
        listener = asyncio.create_task(self._listen_for_events()) if self.layer else None
        failures = 0
        next_poll = 0.0
        try:
            while not stop.is_set():
                try:
                    if self.call_events and not self._events_registered:
                        await self.register_call_events()
                    if time.monotonic() >= next_poll or "*" in self._pending_ids:
                        self._pending_ids.clear()
                        await self.refresh_all()
                        next_poll = time.monotonic() + self.poll_interval
                    elif self._pending_ids:
                        ids, self._pending_ids = self._pending_ids, set()
                        await self.refresh_calls(ids)
                    elif time.monotonic() - self._last_heartbeat >= HEARTBEAT_EVERY:
                        await self._set_status("ok")
                    failures = 0
                    wait = max(0.0, next_poll - time.monotonic())
                except (UapiError, OSError) as exc:
                    failures += 1
                    wait = min(BACKOFF_MAX, 2 ** min(failures - 1, 5)) * random.uniform(0.8, 1.2)
                    log.warning(
                        "VoipNow unavailable (attempt %d, next in %.1fs): %s", failures, wait, exc
                    )
                    await self._set_status("down", str(exc))
                    next_poll = 0.0
                except Exception:
                    # A bug in one cycle must not end the watch; the next cycle starts afresh.
                    failures += 1
                    wait = min(BACKOFF_MAX, 2.0 * failures)
                    log.exception("watcher cycle failed")
                    next_poll = 0.0
                if not self._pending_ids:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            _first(self._wake, stop), timeout=min(wait, HEARTBEAT_EVERY)
                        )
                    if self._pending_ids and failures == 0:
                        await asyncio.sleep(COALESCE_WINDOW)
        finally:
            if listener:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener


def _live_call(call: PhoneCall, org_id: int, directory: Directory) -> LiveCall:
    return LiveCall(
        id=call.id,
        organization_id=org_id,
        extension=call.extension,
        views=tuple(
            LiveView(
                id=v.id,
                extension=v.extension,
                status=v.status,
                source=v.source,
                label=directory.label(v.extension),
            )
            for v in sorted(call.views, key=lambda v: v.id)
        ),
    )


async def _store(entries: dict[str, Any], gone: list[str]) -> None:
    """Write a publish to the store in one hop to a worker thread: Django's cache has no
    async Redis client, and each of its a* calls is a hop of its own."""

    def write() -> None:
        cache.set_many(entries, ROW_TTL)
        if gone:
            cache.delete_many(gone)

    await sync_to_async(write, thread_sensitive=False)()


async def _inherit(org_id: int) -> _OrgState:
    """Continue where a previous watcher left off: its version, and the rows it published."""
    index = await cache.aget(_index_key(org_id))
    if not index:
        return _OrgState(org_id)
    return _OrgState(org_id, version=index["version"], inherited=set(index["ids"]))


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _read_directory() -> tuple[dict[str, int], dict[int, dict[str, str]]]:
    orgs = {o.voipnow_id: o.pk for o in Organization.objects.all()}
    labels: dict[int, dict[str, str]] = {pk: {} for pk in orgs.values()}
    for number, label, org_id in Extension.objects.values_list(
        "number", "label", "organization_id"
    ):
        labels.setdefault(org_id, {})[number] = label
    return orgs, labels


def _watched_extensions() -> list[str]:
    # Call Events can be registered on Phone Terminals, Queues, Conferences and IVRs.
    kinds = [Extension.Type.PHONE_TERMINAL, Extension.Type.QUEUE]
    return list(Extension.objects.filter(type__in=kinds).values_list("number", flat=True))


# ---- one active watcher ------------------------------------------------------------------


class LeaderLock:
    """At most one active watcher: a lock in the cache (Redis in production) that the holder
    renews; when the holder dies the lock expires and another watcher takes over."""

    KEY = f"{_KEY}:watcher-leader"

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = ttl if ttl is not None else settings.CALLBOARD_WATCHER_LOCK_TTL
        self.token = uuid.uuid4().hex

    async def acquire(self) -> bool:
        if await cache.aadd(self.KEY, self.token, timeout=self.ttl):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        # get-then-touch is not atomic, but only the holder ever writes its own token, and a
        # lost race costs at most one overlapping cycle before the loser sees another token.
        if await cache.aget(self.KEY) != self.token:
            return False
        return bool(await cache.atouch(self.KEY, timeout=self.ttl))

    async def release(self) -> None:
        if await cache.aget(self.KEY) == self.token:
            await cache.adelete(self.KEY)


def tune_gc_for_polling() -> None:
    """Fewer, larger young collections for a process that polls thousands of calls.

    One List PhoneCalls of 5,000 calls decodes into some 40,000 short-lived containers; with
    the default thresholds they set off collections of the whole heap during most polls
    (measured in ``make bench``: a 5,000-call poll's p95 fell from about 160 ms to 50 ms).
    """
    gc.set_threshold(100_000, 50, 100)


async def watch(
    stop: asyncio.Event,
    *,
    uapi: UapiClient,
    channel_layer: Any,
    lock: LeaderLock | None = None,
) -> None:
    """Run the watcher while this process holds the leader lock, until ``stop`` is set.

    Several processes may call this; one is active, the others wait and take over within the
    lock's TTL when the active one dies.
    """
    lock = lock or LeaderLock()
    hook_url = f"{settings.CALLBOARD_PUBLIC_URL}/hooks/voipnow/{settings.CALLBOARD_HOOK_SECRET}/"
    waiting_logged = False
    while not stop.is_set():
        try:
            acquired = await lock.acquire()
        except Exception as exc:
            # Redis is down: nobody can hold the lock, so nobody publishes; try again soon.
            log.warning("cannot reach the watcher lock: %s", exc)
            acquired = False
        if not acquired:
            if not waiting_logged:
                log.info("another watcher is active; standing by")
                waiting_logged = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=lock.ttl / 3)
            continue
        waiting_logged = False
        log.info("watching VoipNow at %s", uapi.base_url)
        halt = asyncio.Event()
        keeper = asyncio.create_task(_keep_lock(lock, stop, halt))
        watcher = Watcher(
            uapi,
            channel_layer=channel_layer,
            poll_interval=settings.CALLBOARD_POLL_INTERVAL,
            call_events=settings.CALLBOARD_CALL_EVENTS,
            hook_url=hook_url,
        )
        try:
            await watcher.run(halt)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
    with contextlib.suppress(Exception):
        await lock.release()


async def _keep_lock(lock: LeaderLock, stop: asyncio.Event, halt: asyncio.Event) -> None:
    """Renew the lock every third of its TTL; halt the watcher on stop or when it is lost."""
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=lock.ttl / 3)
            if stop.is_set():
                break
            try:
                held = await lock.renew()
            except Exception:
                log.exception("could not renew the watcher lock")
                held = False
            if not held:
                log.warning("lost the watcher lock; standing down")
                break
    finally:
        halt.set()

"""The live path: the watcher that keeps every Organization's picture of live calls up to date.

The watcher polls List PhoneCalls (and, when VoipNow sends Call Events, refreshes the calls
they name at once), diffs against its last snapshot, renders each changed row once, writes the
rows to the live store (``calls.store``, where screens read the snapshot) and broadcasts only
what changed to the Organization's group. Each broadcast names the version it follows, and a
heartbeat carries the latest versions, so a screen that missed one resyncs from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from calls import store
from calls.agents import AgentFloor
from calls.backoff import backoff
from calls.call_events import CallEventRegistration
from calls.floor import Floor
from calls.history import QueueFloor
from calls.models import Extension, Organization, Wallboard
from calls.rows import Directory, render_gone, render_row, render_status, render_wall_row
from calls.selectors import LiveCall, LiveView
from calls.store import LeaderLock, LiveStatus
from calls.supervising import ATTEMPTS_CHANGED, SupervisorsOnCalls
from calls.uapi.client import UapiClient
from calls.uapi.errors import UapiError, UapiRejected
from calls.uapi.paths import is_call_id, is_extension
from calls.uapi.types import PhoneCall

log = logging.getLogger(__name__)

STATUS_GROUP = "calls.status"
WATCHER_CHANNEL = "callboard.watcher"
# Sent to WATCHER_CHANNEL when what the watcher reads from the database changed.
DIRECTORY_CHANGED = {"type": "directory.changed"}
HEARTBEAT_EVERY = 5.0
# VoipNow sends several Call Events for one change (the queue's, the agent's): wait this long
# for the rest, so a change is one refresh and one broadcast to every screen, not several.
# 3 ms and 20 ms measured worse in ``make bench``.
COALESCE_WINDOW = 0.01
# More calls named at once than this: one List PhoneCalls is cheaper than one GET each.
TARGETED_LIMIT = 20
# Call Events never cost VoipNow more than this: at most one refresh of a call (of an
# extension, of everything) per EVENT_WINDOW seconds. The first event of a call is refreshed
# at once; those that follow within the window become one refresh when it ends, so the screen
# still ends on the call's last state. A state shorter than the window may not be shown: with
# 1 s, ``make bench`` scenario 2 (arrive, answer, hang up 300 ms apart) lost 80,000 of its
# 180,000 deliveries, the answered states; with 0.25 s, none.
EVENT_WINDOW = 0.25
# Call Events accepted a second (``CALLBOARD_HOOK_MAX_PER_SECOND``): past it, they are dropped
# and one poll of everything (itself at most one per EVENT_WINDOW) is asked for instead. With
# both, a flood costs VoipNow at most this many reads a second and a few polls.
EVENTS_PER_SECOND = 50
BACKOFF_MAX = 30.0
# On stop, Call Event registration may take this long to finish the extension it is on.
REGISTRATION_GRACE = 5.0
# The Organizations and extension labels are read again this often, so an admin's changes
# show without a restart.
DIRECTORY_EVERY = 30.0


def org_group(org_id: int) -> str:
    return f"calls.org.{org_id}"


def wallboard_group(wallboard_id: int) -> str:
    """The screens of one wallboard: told when it is changed, revoked or deleted."""
    return f"wallboard.{wallboard_id}"


@dataclass
class _OrgState:
    org_id: int
    version: int = 0
    calls: dict[str, PhoneCall] = field(default_factory=dict)
    # Ids a previous watcher published: screens may still show them.
    inherited: set[str] = field(default_factory=set)
    # A publish failed half-way (Redis down): the store and the screens may miss anything.
    dirty: bool = False
    # The Organization's panels (agents, queue figures) as last published, by name.
    panels: dict[str, str] = field(default_factory=dict)
    # This watcher has listed all of its calls: a call missing from them has ended.
    polled: bool = False

    @classmethod
    async def inherit(cls, org_id: int) -> _OrgState:
        """Continue where a previous watcher left off: its version and the rows it published."""
        index = await store.published(org_id)
        if index is None:
            return cls(org_id)
        return cls(org_id, version=index.version, inherited=set(index.ids))


class _Heartbeat:
    """The watcher's status in the store and on every screen.

    The status is stored on every cycle; it is broadcast when it changes and at least every
    HEARTBEAT_EVERY seconds, with the latest version of each Organization, so that a screen
    that missed a change notices and resyncs.
    """

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.status: LiveStatus = store.starting()
        self.sent_at = 0.0

    def due(self) -> bool:
        return time.monotonic() - self.sent_at >= HEARTBEAT_EVERY

    async def beat(
        self,
        state: str,
        versions: dict[str, int],
        error: str = "",
        uapi: dict[str, int] | None = None,
    ) -> bool:
        """Store the status (with ``uapi``, the request counts) and broadcast it when due;
        True when it was broadcast.

        Never raises: with Redis down the heartbeat is lost and the watch goes on.
        """
        status = self._next(state, error)
        if uapi is not None:
            status["uapi"] = uapi
        broadcast = status["state"] != self.status["state"] or self.due()
        self.status = status
        try:
            await store.write_status(status)
            if not broadcast:
                return False
            self.sent_at = time.monotonic()
            await self.layer.group_send(
                STATUS_GROUP,
                {"type": "calls.status", "html": render_status(status), "versions": versions},
            )
            return True
        except Exception as exc:  # noqa: BLE001 - any store or layer failure: the watch goes on
            log.warning("could not publish the live status: %s", exc)
            return False

    def _next(self, state: str, error: str) -> LiveStatus:
        now = datetime.now(UTC).isoformat()
        prev = self.status
        if state == "ok":
            return {"state": "ok", "as_of": now}
        return {
            "state": state,
            "error": error,
            "as_of": prev.get("as_of"),
            "since": prev.get("since") if prev["state"] == state else now,
        }


class _ListingMemo:
    """The last full listing's entries, raw and parsed, by call id.

    An entry whose JSON equals last listing's is the same call: comparing dicts runs in C,
    parsing thousands of calls again on every poll does not (``make bench``, 4b).
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[Any, PhoneCall]] = {}
        self._next: dict[str, tuple[Any, PhoneCall]] = {}

    def begin(self) -> None:
        """A listing starts; what a failed one gathered is dropped."""
        self._next = {}

    def parse(self, entry: Any) -> PhoneCall:
        """``PhoneCall.from_json(entry)``, or last listing's call when the JSON is the same.
        Raises WireFormatError as that does."""
        key = str(entry.get("id")) if isinstance(entry, dict) else ""
        known = self._last.get(key)
        call = known[1] if known is not None and known[0] == entry else PhoneCall.from_json(entry)
        self._next[key] = (entry, call)
        return call

    def listed(self) -> None:
        """The listing completed: remember exactly its calls."""
        self._last, self._next = self._next, {}


class Watcher:
    """Keeps the store and the screens equal to VoipNow: reconcile (poll, or refresh the calls
    Call Events name), publish the differences, loop. One active per deployment
    (see ``LeaderLock``)."""

    def __init__(
        self,
        uapi: UapiClient,
        *,
        channel_layer: Any,
        poll_interval: float,
        call_events: bool,
        hook_url: str | None = None,
        events_poll_interval: float | None = None,
        floors: Sequence[Floor] = (),
        events_per_second: int = EVENTS_PER_SECOND,
        event_window: float = EVENT_WINDOW,
    ) -> None:
        self.uapi = uapi
        self.floors = tuple(floors)
        self.layer = channel_layer
        self.poll_interval = poll_interval
        # While Call Events arrive they carry the changes, and polling only reconciles.
        self.events_poll_interval = max(poll_interval, events_poll_interval or poll_interval)
        self._last_event = -math.inf
        self.registration = (
            CallEventRegistration(uapi, hook_url) if call_events and hook_url else None
        )
        self._orgs: dict[int, _OrgState] = {}
        self._org_by_voipnow: dict[str, int] = {}
        self._directories: dict[int, Directory] = {}
        # Organizations with a wallboard that lists calls: their rows are also rendered masked.
        self._wall_orgs: set[int] = set()
        self._directory_loaded = 0.0
        self._apply_lock = asyncio.Lock()
        # Each fetch is numbered; a call refreshed by a later fetch is newer than an earlier
        # fetch's copy of it, whatever order the answers arrive in.
        self._fetch_seq = 0
        self._touched: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._pending = _Pending(window=event_window, per_second=events_per_second)
        # When the loop's current sleep ends: an event due before then wakes it.
        self._sleeping_until = math.inf
        self._heartbeat = _Heartbeat(channel_layer)
        self._memo = _ListingMemo()
        # Who is on each call (calls/supervising.py): the audit's open attempts, in memory.
        self.supervisors = SupervisorsOnCalls()

    # -- directory of organizations and extension labels --

    async def load_directory(self) -> None:
        orgs, directories, walls = await sync_to_async(_read_directory)()
        self._org_by_voipnow = orgs
        for org_id, directory in directories.items():
            before = self._directories.get(org_id)
            if before is not None and before != directory and org_id in self._orgs:
                # A label or a queue's long-wait threshold changed: every row of the
                # Organization renders again; screens get only the rows that differ.
                self._orgs[org_id].dirty = True
        self._directories = directories
        self._directory_loaded = time.monotonic()
        # The open attempts are read again with the directory: a lost ATTEMPTS_CHANGED costs
        # at most DIRECTORY_EVERY seconds.
        self.supervisors.stale()
        for org_id in orgs.values():
            if org_id not in self._orgs:
                self._orgs[org_id] = await _OrgState.inherit(org_id)
        for org_id in walls - self._wall_orgs:
            if org_id in self._orgs:
                self._orgs[org_id].dirty = True  # its wallboard rows: render every call again
        self._wall_orgs = walls

    # -- reconcile --

    async def refresh_all(self) -> None:
        """Poll every live call and publish the differences. Raises UapiError."""
        if time.monotonic() - self._directory_loaded > DIRECTORY_EVERY:
            await self.load_directory()
        self._fetch_seq += 1
        seq = self._fetch_seq
        await self.apply_poll(await self.fetch_all(), seq)

    async def fetch_all(self) -> tuple[PhoneCall, ...]:
        """Every live call VoipNow lists, unchanged ones reused from the last poll.
        Raises UapiError."""
        self._memo.begin()
        calls = await self.uapi.list_calls(parse=self._memo.parse)
        self._memo.listed()
        return calls

    async def apply_poll(self, calls: Iterable[PhoneCall], seq: int) -> None:
        """Publish what a poll (fetch number ``seq``) found, per Organization."""
        by_org: dict[int, dict[str, PhoneCall]] = {org_id: {} for org_id in self._orgs}
        for call in calls:
            org_id = self._org_by_voipnow.get(call.owner_id)
            if org_id is not None:
                by_org.setdefault(org_id, {})[call.id] = call
        async with self._apply_lock:
            for org_id, now in by_org.items():
                state = self._orgs.get(org_id) or await _OrgState.inherit(org_id)
                self._orgs[org_id] = state
                state.polled = True
                await self._publish(state, self._newer_than_poll(state, now, seq))
            self._touched = {k: v for k, v in self._touched.items() if v > seq}
        await self._beat("ok")

    def _newer_than_poll(
        self, state: _OrgState, polled: dict[str, PhoneCall], seq: int
    ) -> dict[str, PhoneCall]:
        """The poll's calls, less what a Call Event refreshed after the poll started: the
        event's copy (or its finding that the call is gone) is the newer one."""
        now = dict(polled)
        for call_id, prev in state.calls.items():
            if self._touched.get(call_id, 0) > seq:
                now[call_id] = prev
        for call_id in polled:
            if self._touched.get(call_id, 0) > seq and call_id not in state.calls:
                del now[call_id]
        return now

    async def refresh_calls(self, call_ids: Iterable[str]) -> None:
        """Refresh the named calls only (after Call Events). Raises UapiError."""
        ids = sorted({i for i in call_ids if is_call_id(i)})
        if not ids:
            return
        if len(ids) > TARGETED_LIMIT:
            await self.refresh_all()
            return
        self._fetch_seq += 1
        seq = self._fetch_seq
        found = await asyncio.gather(*(self.uapi.get_call(i) for i in ids))
        await self._apply_some(dict(zip(ids, found, strict=True)), seq)

    async def refresh_extensions(self, numbers: Iterable[str]) -> None:
        """Refresh the calls of the named extensions (after Call Events that carry no UAPI
        call id): list each extension's calls, and look up the calls it had that it no longer
        lists. Falls back to one full poll when that is cheaper or VoipNow will not list by
        extension. Raises UapiError."""
        exts = sorted({n for n in numbers if is_extension(n)})
        if not exts:
            return
        if len(exts) > TARGETED_LIMIT:
            await self.refresh_all()
            return
        self._fetch_seq += 1
        seq = self._fetch_seq
        try:
            listed = await asyncio.gather(*(self.uapi.list_calls(extension=e) for e in exts))
        except UapiRejected as exc:
            log.info("cannot list calls by extension (%s): polling everything", exc.code)
            await self.refresh_all()
            return
        found: dict[str, PhoneCall | None] = {c.id: c for calls in listed for c in calls}
        # A call whose id VoipNow listed in another form cannot be looked up by it: the next
        # poll settles it.
        gone = sorted(i for i in self._calls_involving(exts) - found.keys() if is_call_id(i))
        if len(gone) > TARGETED_LIMIT:
            await self.refresh_all()
            return
        looked_up = await asyncio.gather(*(self.uapi.get_call(i) for i in gone))
        found.update(zip(gone, looked_up, strict=True))
        await self._apply_some(found, seq)

    def _calls_involving(self, numbers: Iterable[str]) -> set[str]:
        wanted = set(numbers)
        return {
            call.id
            for state in self._orgs.values()
            for call in state.calls.values()
            if call.extension in wanted
            or any(v.extension in wanted or wanted.intersection(v.source) for v in call.views)
        }

    async def _apply_some(self, found: dict[str, PhoneCall | None], seq: int) -> None:
        """Publish what a targeted fetch (number ``seq``) found: each call as it is now, or
        None for a call that has ended."""
        async with self._apply_lock:
            changes: dict[int, dict[str, PhoneCall | None]] = {}
            for call_id, call in found.items():
                self._touched[call_id] = seq
                org_id = self._org_holding(call_id, call)
                if org_id is not None:
                    changes.setdefault(org_id, {})[call_id] = call
            for org_id, some in changes.items():
                state = self._orgs.setdefault(org_id, _OrgState(org_id))
                now = dict(state.calls)
                for call_id, call in some.items():
                    if call is None:
                        now.pop(call_id, None)
                    else:
                        now[call_id] = call
                await self._publish(state, now)

    def _org_holding(self, call_id: str, call: PhoneCall | None) -> int | None:
        """The Organization a refreshed call belongs to; for a call that is gone, the one
        that showed it. None when it is none of ours."""
        if call is not None:
            return self._org_by_voipnow.get(call.owner_id)
        return next((o for o, s in self._orgs.items() if call_id in s.calls), None)

    # -- publish --

    async def _follow(
        self, org_id: int, calls: dict[str, PhoneCall], ended: list[PhoneCall]
    ) -> dict[str, str]:
        """Tell each floor the calls changed; gather their panels. A floor that fails costs
        its panels this time, never the calls."""
        panels: dict[str, str] = {}
        for floor in self.floors:
            try:
                await floor.calls_changed(org_id, calls, ended)
                panels.update(await floor.panels(org_id, calls))
            except Exception:
                log.exception("%s failed to follow the calls", type(floor).__name__)
        return panels

    async def refresh_panels(self, org_id: int) -> None:
        """Publish the floors' panels of an Organization now: for a floor whose own data
        changed (agents polled, the day rolled over)."""
        state = self._orgs.get(org_id)
        if state is None:
            return
        panels: dict[str, str] = {}
        for floor in self.floors:
            try:
                panels.update(await floor.panels(org_id, state.calls))
            except Exception:
                log.exception("%s failed to render its panels", type(floor).__name__)
        await self.publish_panels(org_id, panels)

    @property
    def organizations(self) -> list[int]:
        """The Organizations being watched."""
        return list(self._orgs)

    async def publish_panels(self, org_id: int, panels: dict[str, str]) -> None:
        """Publish an Organization's panels (name → its rendered, out-of-band element) beside
        its calls: the same versions, the same messages, the same snapshot, so a screen that
        missed one resyncs as it does for calls. Only panels that changed are sent."""
        async with self._apply_lock:
            state = self._orgs.get(org_id)
            if state is None or state.inherited:
                # Not polled since taking over: publishing now would remove the calls the
                # previous watcher published. The first poll's publish carries the panels.
                return
            await self._publish(state, state.calls, panels)

    async def _publish(
        self, state: _OrgState, now: dict[str, PhoneCall], panels: dict[str, str] | None = None
    ) -> None:
        """Diff ``now`` (and ``panels``) against the last snapshot; store and broadcast what
        changed.

        If storing or sending fails half-way (Redis down), the next publish of this
        Organization sends everything again, so no screen and no snapshot stays behind.
        """
        before = state.calls
        if state.dirty:
            state.inherited |= set(state.calls)
            state.calls = {}
            state.panels = {}
        prev, inherited = state.calls, state.inherited
        changed = [c for cid, c in now.items() if prev.get(cid) is not c and prev.get(cid) != c]
        removed = [cid for cid in prev.keys() | inherited if cid not in now]
        relabel = await self._supervisors_changed(state, now, changed)
        if (changed or removed) and self.floors:
            ended = [call for cid, call in before.items() if cid not in now]
            panels = {**await self._follow(state.org_id, now, ended), **(panels or {})}
        all_panels = {**state.panels, **(panels or {})}
        new_panels = {n: html for n, html in all_panels.items() if state.panels.get(n) != html}
        if (
            not changed
            and not removed
            and not new_panels
            and not relabel
            and state.version
            and not state.dirty
        ):
            return
        directory = self._directories.get(state.org_id) or Directory(labels={})
        on = self.supervisors.on
        rows = {c.id: render_row(c, directory, on(state.org_id, c.id)) for c in changed + relabel}
        wall = (
            {c.id: render_wall_row(c, directory) for c in changed}
            if state.org_id in self._wall_orgs
            else {}
        )
        # Versions grow with time, so a watcher that starts afresh (Redis lost its data, say)
        # never reuses a version screens have already seen.
        version = max(state.version + 1, time.time_ns() // 1000)
        state.dirty = True
        unchanged: set[str] = set()
        if inherited:
            # Taking over from another watcher: screens already show the rows it published.
            shown = await store.published_rows(state.org_id, [c for c in rows if c in inherited])
            unchanged = {cid for cid, html in shown.items() if html == rows[cid]}
        await store.publish(
            state.org_id,
            version=version,
            # VoipNow lists calls by publish time; calls new from events come last: keep that.
            ids=list(now),
            rows=rows,
            calls={c.id: _live_call(c, state.org_id, directory).to_cache() for c in changed},
            removed=removed,
            panels=new_panels,
            panel_names=list(all_panels),
            wall_rows=wall,
        )
        sent = [html for cid, html in rows.items() if cid not in unchanged]
        if sent or removed or new_panels:
            gone = "".join(render_gone(cid) for cid in removed)
            await self.layer.group_send(
                org_group(state.org_id),
                {
                    "type": "calls.changes",
                    "version": version,
                    "prev": state.version,
                    # Table rows lead: htmx parses a message as a <template>'s content, where
                    # a <tr> that follows a <section> (a panel) is dropped as misplaced.
                    "html": "".join(sent) + gone + "".join(new_panels.values()),
                    # The same change in parts, for wallboards to pick from without rendering
                    # or parsing: panels by name, masked rows by call id, the removals.
                    "panels": new_panels,
                    "wall": wall,
                    "gone": gone,
                },
            )
        state.calls, state.inherited, state.version, state.dirty = now, set(), version, False
        state.panels = all_panels

    async def _supervisors_changed(
        self, state: _OrgState, now: dict[str, PhoneCall], changed: list[PhoneCall]
    ) -> list[PhoneCall]:
        """Follow the supervisors on the Organization's calls; the calls not in ``changed``
        whose rows must be rendered again because who is on them changed. A failure (the
        database down) costs the supervisors this time, never the calls."""
        try:
            ids = await self.supervisors.follow(state.org_id, now, complete=state.polled)
        except Exception:
            log.exception("could not follow the supervisors on the calls")
            return []
        if not ids:
            return []
        done = {c.id for c in changed}
        return [now[cid] for cid in ids if cid in now and cid not in done]

    def attempts_changed(self, org_id: int | None, call_id: str | None) -> None:
        """An attempt of the Organization was accepted, cancelled or left: read its attempts
        again and refresh the call soon. Not a Call Event: polling keeps its pace."""
        self.supervisors.stale(org_id)
        self._pending.add(call_id, ())
        self._wake.set()

    async def _beat(self, state: str, error: str = "") -> None:
        versions = {str(o): s.version for o, s in self._orgs.items() if s.version}
        budget = self.uapi.budget
        usage = (
            {"requests_last_minute": budget.last_minute(), "limit_per_minute": budget.per_minute}
            if budget
            else None
        )
        if await self._heartbeat.beat(state, versions, error, usage):
            await self._check_store()

    async def _check_store(self) -> None:
        """Notice a store that lost what we published (Redis restarted without persistence)
        and publish everything again on the next cycle. Never raises."""
        try:
            for org_id, state in self._orgs.items():
                if state.version and await store.published(org_id) is None:
                    log.warning("the live store lost organization %s; republishing", org_id)
                    state.dirty = True
        except Exception as exc:  # noqa: BLE001 - Redis down: the next heartbeat checks again
            log.warning("could not check the live store: %s", exc)

    # -- loop --

    def call_event(self, call_id: object, extensions: object = ()) -> None:
        """A Call Event arrived: refresh the call it names soon; without a UAPI call id (an
        ordinary inbound call on VoipNow 3.x), the extensions it names; without either,
        everything. At most one refresh of each per EVENT_WINDOW, and past the events a
        second allowed, one poll of everything instead (see ``_Pending``).

        The message comes from the channel layer: a call id or an extension not of VoipNow's
        form is never put in a URL. An event that names nothing else is ignored."""
        wanted = call_id if isinstance(call_id, str) and is_call_id(call_id) else None
        listed = isinstance(extensions, list | tuple)
        given: list[object] = list(extensions) if isinstance(extensions, list | tuple) else []
        numbers = [n for n in given if isinstance(n, str) and is_extension(n)]
        malformed = (
            (call_id not in (None, "") and wanted is None)
            or len(numbers) < len(given)
            or (not listed and bool(extensions))
        )
        if malformed and not (wanted or numbers):
            log.warning("a Call Event naming no call or extension of VoipNow's form: ignored")
            return
        self._last_event = time.monotonic()
        due_at = self._pending.add(wanted, numbers)
        if due_at < self._sleeping_until:
            self._wake.set()

    def _poll_interval(self) -> float:
        events_flowing = time.monotonic() - self._last_event < self.events_poll_interval
        return self.events_poll_interval if events_flowing else self.poll_interval

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and refresh until ``stop`` is set; never raises for a bad or absent VoipNow."""
        await self.load_directory()
        listener = asyncio.create_task(self._listen_for_events()) if self.layer else None
        registering = (
            asyncio.create_task(self.registration.run(stop)) if self.registration else None
        )
        following = [asyncio.create_task(floor.run(self, stop)) for floor in self.floors]
        failures = 0
        next_poll = 0.0
        try:
            while not stop.is_set():
                try:
                    next_poll = await self._cycle(next_poll)
                    failures = 0
                    wait = max(0.0, next_poll - time.monotonic())
                except (UapiError, OSError) as exc:
                    failures += 1
                    wait = backoff(failures, first=1.0, cap=BACKOFF_MAX)
                    log.warning(
                        "VoipNow unavailable (attempt %d, next in %.1fs): %s", failures, wait, exc
                    )
                    await self._beat("down", str(exc))
                    next_poll = 0.0
                except Exception:  # a bug in one cycle must not end the watch
                    failures += 1
                    wait = backoff(failures, first=2.0, cap=BACKOFF_MAX)
                    log.exception("watcher cycle failed")
                    next_poll = 0.0
                await self._sleep(stop, wait, coalesce=failures == 0)
        finally:
            if registering:
                # Let it finish the extension it is on (its records are written in a thread
                # that a cancel would not stop), then stop it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(registering), REGISTRATION_GRACE)
            for task in (listener, registering, *following):
                if task:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _cycle(self, next_poll: float) -> float:
        """One turn: a poll, a refresh of what Call Events named, or a heartbeat. Returns when
        the next poll is due. Raises UapiError."""
        pending = self._pending.take(poll=time.monotonic() >= next_poll)
        if pending.everything:
            await self.refresh_all()
            return time.monotonic() + self._poll_interval()
        if pending.ids:
            await self.refresh_calls(pending.ids)
        if pending.extensions:
            await self.refresh_extensions(pending.extensions)
        if self._heartbeat.due():
            # Also while Call Events keep the watcher busy: a screen whose calls do not change
            # (a wallboard of quiet queues) hears from it every HEARTBEAT_EVERY all the same.
            await self._beat("ok")
        return next_poll

    async def _sleep(self, stop: asyncio.Event, wait: float, *, coalesce: bool) -> None:
        """Wait until the next poll, a Call Event due for a refresh or ``stop``; after an
        event, give its siblings the coalescing window to arrive."""
        due_in = self._pending.due_in()
        if due_in <= 0:
            return
        timeout = min(wait, HEARTBEAT_EVERY, due_in)
        self._wake.clear()
        self._sleeping_until = time.monotonic() + timeout
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(self._wake, stop), timeout=timeout)
        finally:
            self._sleeping_until = math.inf
        if self._pending.due_in() <= 0 and coalesce:
            await asyncio.sleep(COALESCE_WINDOW)

    async def _listen_for_events(self) -> None:
        failures = 0
        while True:
            try:
                message = await self.layer.receive(WATCHER_CHANNEL)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the layer is down (Redis restarting)
                failures += 1
                log.warning("cannot receive Call Events from the channel layer: %s", exc)
                # Polling carries on meanwhile.
                await asyncio.sleep(backoff(failures, first=1.0, cap=BACKOFF_MAX))
                continue
            failures = 0
            self.heard(message)

    def heard(self, message: dict[str, Any]) -> None:
        """Act on one message of WATCHER_CHANNEL: a Call Event (dashboard/hooks.py), an
        attempt that changed (calls/services.py), the directory that changed (the admin)."""
        if message.get("type") == "call.event":
            self.call_event(message.get("call_id"), message.get("extensions") or ())
        elif message.get("type") == ATTEMPTS_CHANGED:
            org, call_id = message.get("org"), message.get("call_id")
            self.attempts_changed(
                org if isinstance(org, int) else None,
                call_id if isinstance(call_id, str) and call_id else None,
            )
        elif message.get("type") == DIRECTORY_CHANGED["type"]:
            # An admin changed what is watched (a wallboard now lists calls): read it now.
            self._directory_loaded = -math.inf
            self.call_event(None)


@dataclass
class _Due:
    """What a turn refreshes."""

    ids: set[str] = field(default_factory=set)
    extensions: set[str] = field(default_factory=set)
    everything: bool = False


_EVERYTHING = "*"


class _Pending:
    """What Call Events asked to refresh and is not refreshed yet, and when each call,
    extension and "everything" was last refreshed for an event.

    A call (extension, everything) refreshed less than ``window`` seconds ago waits until the
    window ends, however many events name it meanwhile: one refresh. Past ``per_second``
    events in a second, or more calls or extensions waiting than a targeted refresh reads,
    events are dropped for one refresh of everything, which covers them. So however many
    events arrive, what they cost VoipNow is bounded by the calls they name and the window.
    """

    def __init__(
        self, *, window: float, per_second: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self.per_second = per_second
        self.clock = clock
        self.ids: set[str] = set()
        self.extensions: set[str] = set()
        self.everything = False
        self._refreshed: dict[str, float] = {}
        self._second = -1
        self._this_second = 0

    def add(self, call_id: str | None, extensions: Sequence[str]) -> float:
        """Note an event (its ids already checked); returns when its refresh falls due."""
        now = self.clock()
        if int(now) != self._second:
            self._second, self._this_second = int(now), 0
        self._this_second += 1
        if self._this_second > self.per_second:
            if self._this_second == self.per_second + 1:
                log.warning("more than %d Call Events a second: polling instead", self.per_second)
            return self._add_everything(now)
        if self.everything:
            return self._due_at(_EVERYTHING, now)  # the coming poll covers this event too
        if call_id:
            self.ids.add(call_id)
            keys = [f"call:{call_id}"]
        elif extensions:
            self.extensions.update(extensions)
            keys = [f"ext:{n}" for n in extensions]
        else:
            return self._add_everything(now)
        if len(self.ids) > TARGETED_LIMIT or len(self.extensions) > TARGETED_LIMIT:
            return self._add_everything(now)
        return min(self._due_at(key, now) for key in keys)

    def _add_everything(self, now: float) -> float:
        self.everything = True
        self.ids.clear()
        self.extensions.clear()
        return self._due_at(_EVERYTHING, now)

    def _due_at(self, key: str, now: float) -> float:
        last = self._refreshed.get(key)
        return now if last is None else max(now, last + self.window)

    def _due(self, key: str, now: float) -> bool:
        return self._due_at(key, now) <= now

    def take(self, *, poll: bool = False) -> _Due:
        """What is due now, marked refreshed; the rest keeps waiting. With ``poll`` (a
        scheduled poll is due), everything: the poll covers whatever events asked for."""
        now = self.clock()
        self._refreshed = {k: t for k, t in self._refreshed.items() if t + self.window > now}
        if poll or (self.everything and self._due(_EVERYTHING, now)):
            for key in [*(f"call:{i}" for i in self.ids), *(f"ext:{n}" for n in self.extensions)]:
                self._refreshed[key] = now
            self._refreshed[_EVERYTHING] = now
            self.ids, self.extensions, self.everything = set(), set(), False
            return _Due(everything=True)
        if self.everything:
            return _Due()  # the poll due at the end of the window covers the rest too
        ids = {i for i in self.ids if self._due(f"call:{i}", now)}
        extensions = {n for n in self.extensions if self._due(f"ext:{n}", now)}
        self.ids -= ids
        self.extensions -= extensions
        for key in [*(f"call:{i}" for i in ids), *(f"ext:{n}" for n in extensions)]:
            self._refreshed[key] = now
        return _Due(ids=ids, extensions=extensions)

    def due_in(self) -> float:
        """Seconds until something waiting falls due: 0 when something is due now, infinity
        when nothing waits."""
        now = self.clock()
        if self.everything:
            keys = [_EVERYTHING]
        else:
            keys = [*(f"call:{i}" for i in self.ids), *(f"ext:{n}" for n in self.extensions)]
        if not keys:
            return math.inf
        return max(0.0, min(self._due_at(k, now) for k in keys) - now)


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


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _read_directory() -> tuple[dict[str, int], dict[int, Directory], set[int]]:
    orgs = {o.voipnow_id: o.pk for o in Organization.objects.all()}
    walls = set(
        Wallboard.objects.filter(enabled=True, show_calls=True).values_list(
            "organization_id", flat=True
        )
    )
    directories = {pk: Directory(labels={}) for pk in orgs.values()}
    for number, label, org_id, type_, long_wait in Extension.objects.values_list(
        "number", "label", "organization_id", "type", "long_wait_seconds"
    ):
        directory = directories.setdefault(org_id, Directory(labels={}))
        directory.labels[number] = label
        if type_ == Extension.Type.QUEUE and long_wait:
            directory.long_waits[number] = long_wait
    return orgs, directories, walls


# ---- one active watcher ------------------------------------------------------------------


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
    hook_url: str | None,
    lock: LeaderLock | None = None,
) -> None:
    """Run the watcher while this process holds the leader lock, until ``stop`` is set.

    ``hook_url`` is where VoipNow is to send Call Events (None: poll only). Several processes
    may call this; one is active, the others wait and take over within the lock's TTL when
    the active one dies.
    """
    lock = lock or LeaderLock()
    waiting_logged = False
    while not stop.is_set():
        try:
            acquired = await lock.acquire()
        except Exception as exc:  # noqa: BLE001 - Redis is down: nobody can hold the lock
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
        agents = AgentFloor(uapi, poll_interval=settings.CALLBOARD_AGENT_POLL_INTERVAL)
        watcher = Watcher(
            uapi,
            channel_layer=channel_layer,
            poll_interval=settings.CALLBOARD_POLL_INTERVAL,
            call_events=settings.CALLBOARD_CALL_EVENTS,
            hook_url=hook_url,
            events_poll_interval=settings.CALLBOARD_EVENTS_POLL_INTERVAL,
            floors=[agents, QueueFloor(uapi, agents=agents)],
            events_per_second=settings.CALLBOARD_HOOK_MAX_PER_SECOND,
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
            except Exception:  # Redis down: treat the lock as lost
                log.exception("could not renew the watcher lock")
                held = False
            if not held:
                log.warning("lost the watcher lock; standing down")
                break
    finally:
        halt.set()

"""The live store: what the watcher publishes and what screens and rules read back.

One place knows the keys. The watcher writes through the write side (``publish``,
``write_status``, ``LeaderLock``); consumers, views and selectors read through the read side
(``read_snapshot``, ``current_status``, ``live_call``). Nobody else spells a key.

Layout (in the default cache: Redis in production, memory in the embedded default):
``live:v1:org:<org>:index`` the Organization's published version and call ids in order,
``live:v1:org:<org>:row:<call>`` each call's rendered row, ``live:v1:org:<org>:wall:<call>`` its
row for wallboards (callers masked; only while a wallboard lists calls),
``live:v1:org:<org>:panel:<name>``
each rendered panel (agents, a queue's figures), ``live:v1:call:<call>`` the parts
of a call the rules need, ``live:v1:status`` the watcher's freshness,
``live:v1:watcher-leader`` the lock that keeps one watcher active, and
``live:v1:org:<org>:agent-states`` each agent's state and when it began.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, BaseCache, caches
from django.core.signals import setting_changed

_PREFIX = "live:v1"
_STATUS_KEY = f"{_PREFIX}:status"
_LEADER_KEY = f"{_PREFIX}:watcher-leader"
# What the watcher wrote outlives a dead watcher long enough for a new one to take over and
# rewrite it.
TTL = 24 * 3600


def _index_key(org_id: int) -> str:
    return f"{_PREFIX}:org:{org_id}:index"


def _row_key(org_id: int, call_id: str) -> str:
    return f"{_PREFIX}:org:{org_id}:row:{call_id}"


def _wall_key(org_id: int, call_id: str) -> str:
    return f"{_PREFIX}:org:{org_id}:wall:{call_id}"


def _panel_key(org_id: int, name: str) -> str:
    return f"{_PREFIX}:org:{org_id}:panel:{name}"


def _call_key(call_id: str) -> str:
    return f"{_PREFIX}:call:{call_id}"


class LiveStatus(TypedDict):
    """The watcher's freshness: ``state`` is ``starting``, ``ok`` or ``down``."""

    state: str
    as_of: NotRequired[str | None]
    error: NotRequired[str]
    since: NotRequired[str | None]
    # UAPI requests in the last minute and the bound on them (see RequestBudget).
    uapi: NotRequired[dict[str, int]]


def starting() -> LiveStatus:
    """The status before any watcher has written one."""
    return {"state": "starting"}


@dataclass(frozen=True, slots=True)
class Published:
    """An Organization's index: the version last published, its call ids in order and the
    names of its panels."""

    version: int
    ids: tuple[str, ...]
    panels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a new screen gets: the rows (None when still at the version the caller has), the
    panels (agents, queue figures) and the watcher's status."""

    version: int
    rows: list[str] | None
    panels: list[str]
    status: LiveStatus


class _Client:
    """The store's cache client, one per process.

    ``django.core.cache.cache`` is a client per async context: each websocket consumer got its
    own, and with Redis its own connection pool and TCP connection, so 2,000 screens held
    2,000 Redis connections and every new screen paid a connect. One client's pool is shared
    by all of them (redis-py pools are thread-safe).
    """

    def __init__(self) -> None:
        self._cache: BaseCache | None = None

    def get(self) -> BaseCache:
        if self._cache is None:
            self._cache = caches.create_connection(DEFAULT_CACHE_ALIAS)
        return self._cache

    def reset(self) -> None:
        self._cache = None


_client = _Client()


def _reset_client(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":  # tests that switch caches get a client for the new one
        _client.reset()


setting_changed.connect(_reset_client)


def _cache() -> BaseCache:
    return _client.get()


# ---- read side ---------------------------------------------------------------------------


async def snapshot(org_id: int) -> tuple[int, list[str]]:
    """``(version, rendered rows)`` of an Organization's live calls, in arrival order."""
    found = await read_snapshot(org_id)
    return found.version, found.rows or []


async def read_snapshot(
    org_id: int, unless_version: int | None = None, *, wall: bool = False
) -> Snapshot:
    """The snapshot, its panels and the watcher's status, read together: what a new screen
    needs. The rows are None when the snapshot is still at ``unless_version`` (the caller has
    them); with ``wall``, they are the wallboard rows (callers masked) instead."""
    # Django's cache has no async Redis client: its a* methods each hop to the one thread that
    # also runs every database query. One hop to any worker thread for the reads keeps a burst
    # of screens connecting from queueing behind the database.
    return await sync_to_async(_read_snapshot, thread_sensitive=False)(org_id, unless_version, wall)


def _read_snapshot(org_id: int, unless_version: int | None, wall: bool) -> Snapshot:
    cache = _cache()
    found = cache.get_many([_index_key(org_id), _STATUS_KEY])
    status: LiveStatus = found.get(_STATUS_KEY) or starting()
    index = found.get(_index_key(org_id))
    if not index:
        return Snapshot(0, [], [], status)
    version, ids, names = index["version"], index["ids"], index.get("panels", [])
    panel_keys = [_panel_key(org_id, name) for name in names]
    row_key = _wall_key if wall else _row_key
    row_keys = [] if version == unless_version else [row_key(org_id, i) for i in ids]
    values = cache.get_many(row_keys + panel_keys)
    panels = [values[key] for key in panel_keys if key in values]
    if version == unless_version:
        return Snapshot(version, None, panels, status)
    return Snapshot(version, [values[k] for k in row_keys if k in values], panels, status)


def current_status() -> LiveStatus:
    """The watcher's last status, or ``starting`` when none has been written."""
    status: LiveStatus | None = _cache().get(_STATUS_KEY)
    return status or starting()


def live_call(call_id: str) -> dict[str, Any] | None:
    """The rules' view of a live call as the watcher last published it (see
    ``calls.selectors.LiveCall``), or None when it is not live."""
    data: dict[str, Any] | None = _cache().get(_call_key(call_id))
    return data


async def published(org_id: int, *, cache: BaseCache | None = None) -> Published | None:
    """The Organization's index as last published, by any watcher; None when there is none
    (never published, or the store lost it). ``cache`` reads another deployment's store
    (the benchmark reads the one its processes share)."""
    index = await (cache or _cache()).aget(_index_key(org_id))
    if not index:
        return None
    return Published(
        version=index["version"], ids=tuple(index["ids"]), panels=tuple(index.get("panels", ()))
    )


async def published_rows(org_id: int, call_ids: list[str]) -> dict[str, str]:
    """The rendered rows the store holds for these calls, by call id."""
    keys = {_row_key(org_id, call_id): call_id for call_id in call_ids}
    found = await _cache().aget_many(list(keys))
    return {keys[key]: html for key, html in found.items()}


# ---- write side --------------------------------------------------------------------------


async def publish(
    org_id: int,
    *,
    version: int,
    ids: list[str],
    rows: dict[str, str],
    calls: dict[str, dict[str, Any]],
    removed: list[str],
    panels: dict[str, str] | None = None,
    panel_names: list[str] | None = None,
    wall_rows: dict[str, str] | None = None,
) -> None:
    """Write one publish of an Organization: its index (with ``panel_names``, every panel it
    has), the changed rows, calls, ``panels`` and ``wall_rows`` (the wallboards' rows), and
    drop the removed calls.

    One hop to a worker thread for the whole write: Django's cache has no async Redis client,
    and each of its a* calls is a hop of its own. Raises whatever the cache raises (Redis
    down): the caller republishes everything next time.
    """
    entries: dict[str, Any] = {_row_key(org_id, cid): html for cid, html in rows.items()}
    entries.update({_call_key(cid): data for cid, data in calls.items()})
    entries.update({_panel_key(org_id, name): html for name, html in (panels or {}).items()})
    entries.update({_wall_key(org_id, cid): html for cid, html in (wall_rows or {}).items()})
    entries[_index_key(org_id)] = {"version": version, "ids": ids, "panels": panel_names or []}
    gone = [key(org_id, cid) for cid in removed for key in (_row_key, _wall_key)]
    gone += [_call_key(cid) for cid in removed]

    def write() -> None:
        cache = _cache()
        cache.set_many(entries, TTL)
        if gone:
            cache.delete_many(gone)

    await sync_to_async(write, thread_sensitive=False)()


async def write_status(status: LiveStatus) -> None:
    """Store the watcher's status for pages and new screens. Raises what the cache raises."""
    await _cache().aset(_STATUS_KEY, status, TTL)


class LeaderLock:
    """At most one active watcher: a lock in the store (Redis in production) that the holder
    renews; when the holder dies the lock expires and another watcher takes over."""

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = ttl if ttl is not None else settings.CALLBOARD_WATCHER_LOCK_TTL
        self.token = uuid.uuid4().hex

    async def acquire(self) -> bool:
        if await _cache().aadd(_LEADER_KEY, self.token, timeout=self.ttl):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        # get-then-touch is not atomic, but only the holder ever writes its own token, and a
        # lost race costs at most one overlapping cycle before the loser sees another token.
        if await _cache().aget(_LEADER_KEY) != self.token:
            return False
        return bool(await _cache().atouch(_LEADER_KEY, timeout=self.ttl))

    async def release(self) -> None:
        if await _cache().aget(_LEADER_KEY) == self.token:
            await _cache().adelete(_LEADER_KEY)


# ---- agent states ------------------------------------------------------------------------


def _agent_states_key(org_id: int) -> str:
    return f"{_PREFIX}:org:{org_id}:agent-states"


@dataclass(frozen=True, slots=True)
class AgentSince:
    """An agent's state (``available``, ``ringing``, ``on_call``, ``paused``,
    ``logged_out``) and when it began."""

    state: str
    since: datetime


async def agent_states(org_id: int) -> dict[str, AgentSince]:
    """The Organization's agents' states as last saved, by agent number; empty when none were
    saved (or the store lost them). Raises what the cache raises."""
    saved = await _cache().aget(_agent_states_key(org_id))
    found: dict[str, AgentSince] = {}
    for agent, (state, since) in (saved or {}).items():
        found[agent] = AgentSince(state, datetime.fromisoformat(since))
    return found


async def save_agent_states(org_id: int, states: Mapping[str, AgentSince]) -> None:
    """Keep the Organization's agents' states, replacing what was saved: a watcher that
    starts (a restart, a handover) reads them back with ``agent_states``. Raises what the
    cache raises."""
    data = {agent: [s.state, s.since.isoformat()] for agent, s in states.items()}
    await _cache().aset(_agent_states_key(org_id), data, TTL)

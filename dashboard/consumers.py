"""Websocket consumers: they relay. Check who is connecting, join the Organization's group,
send the snapshot, forward what the watcher broadcasts; and close for good, with a code the
page understands, when the right to watch is taken away (dashboard/access.py)."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import weakref
from collections import defaultdict
from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.template.loader import render_to_string

from calls import live, store
from calls.rows import render_status
from calls.selectors import WallboardScreen, wallboard_screen, working_wallboards
from dashboard.access import (
    ACCESS_CHANGED,
    SIGNED_OUT,
    SIGNED_OUT_ACCESS,
    Access,
    SocketKey,
    read_access,
    session_digest,
    user_group,
)
from dashboard.version import page_version

SNAPSHOT_TEMPLATE = "calls/live.html#calls-snapshot"
WALL_SNAPSHOT_TEMPLATE = "calls/wallboard.html#wall-snapshot"
WALL_VERSION_TEMPLATE = "calls/wallboard.html#wall-version"
# Close codes a wallboard's page understands (static/wallboard.js): its token no longer
# works (the page says so and stops), or its settings changed (the page reloads).
REVOKED = 4001
CHANGED = 4002
# Screens whose right to watch is read again in one round: at most this many in one query.
ROUND_BATCH = 1000
# A snapshot of thousands of calls is several MB: send it in messages of about this many
# characters, below the 1 MiB a websocket peer accepts by default.
SNAPSHOT_CHUNK = 256 * 1024

log = logging.getLogger(__name__)


# channels ships no type information: its consumer base class types as Any.
class RelayConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """A websocket consumer whose data handlers never touch the database after connecting
    (only the rare checks of access do, dashboard/access.py).

    Channels closes stale database connections before every message it dispatches, with a
    hop to the one thread that runs database work; at thousands of messages a second that hop
    is where a daphne process spends its time (measured in ``make bench``). Database work here
    goes through ``database_sync_to_async``, which closes stale connections itself.
    """

    ended = False

    async def dispatch(self, message: dict[str, Any]) -> None:
        if self.ended and message["type"] != "websocket.disconnect":
            return  # closed for good: what was already on its way is dropped, not sent
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def end(self, code: int) -> None:
        """Close for good with ``code``: leave the groups and drop whatever still arrives, so
        that nothing more is sent after the decision."""
        if self.ended:
            return
        self.ended = True
        for group in self.groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.close(code=code)

    async def refuse(self, code: int) -> None:
        """Accept, then close with ``code`` before sending anything. A refused handshake
        reaches a page as 1006, which it retries for ever; a code tells it why and to stop
        (a page coming back after a restart to a session that ended meanwhile)."""
        await self.accept()
        await self.end(code)


class _LiveConsumer(RelayConsumer):
    """Shared relay: subclasses decide which Organization a socket may see, and whether it
    still may (``read_access`` for a round of every open screen, ``apply_access``)."""

    org_id: int
    version = 0
    access_key: Hashable

    async def join(self, org_id: int, *groups: str) -> None:
        """Join the Organization's group, the status group and ``groups``, and be read again
        in every round of access checks from now on."""
        self.org_id = org_id
        self.groups = [live.org_group(org_id), live.STATUS_GROUP, *groups]
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        _rounds().add(self)

    async def disconnect(self, code: int) -> None:
        _rounds().discard(self)

    async def end(self, code: int) -> None:
        _rounds().discard(self)
        await super().end(code)

    @staticmethod
    def read_access(keys: Collection[Any]) -> dict[Any, Any]:
        """What each screen's key allows now, read in a few queries for all (runs in a
        thread: database work)."""
        raise NotImplementedError

    async def apply_access(self, found: Any) -> None:
        """Close for good when ``found`` (from ``read_access``) no longer allows this screen."""
        raise NotImplementedError

    async def send_snapshot(self) -> None:
        # Joined the groups first: a change published while we read is forwarded as well, and
        # the version check below drops what the snapshot already holds.
        known = _snapshots.get(self.org_id)
        found = await store.read_snapshot(
            self.org_id, unless_version=known.version if known else None
        )
        if found.rows is not None or known is None:
            known = _Snapshot(found.version, _snapshot_messages(found.rows or [], found.panels))
            _snapshots[self.org_id] = known
        self.version = found.version
        first, *rest = known.messages
        await self.send(text_data=first + render_status(found.status))
        for message in rest:
            await self.send(text_data=message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Read-only sockets: whatever a browser sends is ignored.
        return

    async def calls_changes(self, event: dict[str, Any]) -> None:
        if event["version"] <= self.version:
            return  # already in the snapshot this screen got
        if event["prev"] != self.version:
            # A change was missed (layer overflow, watcher handover): resync from the store.
            await self.send_snapshot()
            return
        self.version = event["version"]
        await self.forward(event)

    async def forward(self, event: dict[str, Any]) -> None:
        """Send this screen its part of a change."""
        await self.send(text_data=event["html"])

    async def calls_status(self, event: dict[str, Any]) -> None:
        latest = event.get("versions", {}).get(str(self.org_id))
        if latest is not None and latest > self.version:
            # The heartbeat follows every change on the same channel, so a difference here
            # means a change never reached this screen.
            await self.send_snapshot()
            return
        await self.send(text_data=event["html"])


class LiveCallsConsumer(_LiveConsumer):
    """``/ws/calls/``: a signed-in supervisor's Organization, nothing else, for as long as the
    session holds and the user is still that Organization's supervisor with the same rights.
    Closed with SIGNED_OUT or ACCESS_CHANGED (dashboard/access.py) otherwise."""

    access: Access
    access_key: SocketKey
    session: str = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        key = getattr(self.scope.get("session"), "session_key", None)
        if user is None or not user.is_authenticated or not key:
            await self.refuse(SIGNED_OUT)
            return
        self.access_key, self.session = (key, user.pk), session_digest(key)
        self.access = (await database_sync_to_async(read_access)([self.access_key]))[
            self.access_key
        ]
        if self.access.organization_id is None or not self.access.may_watch:
            await self.refuse(ACCESS_CHANGED if self.access.signed_in else SIGNED_OUT)
            return
        await self.join(self.access.organization_id, user_group(user.pk))
        await self.accept()
        await self.send_snapshot()

    @staticmethod
    def read_access(keys: Collection[Any]) -> dict[Any, Any]:
        return read_access(keys)

    async def apply_access(self, found: Any) -> None:
        code = (found or SIGNED_OUT_ACCESS).close_code(self.access)
        if code is not None:
            await self.end(code)

    async def access_check(self, event: dict[str, Any]) -> None:
        """Something this user's access depends on changed (dashboard/access.py's signals)."""
        found = await database_sync_to_async(read_access)([self.access_key])
        await self.apply_access(found[self.access_key])

    async def access_signed_out(self, event: dict[str, Any]) -> None:
        """The user logged out of a session: its sockets end, the others go on."""
        if event.get("session") == self.session:
            await self.end(SIGNED_OUT)


class WallboardConsumer(_LiveConsumer):
    """``/ws/wallboard/<token>/``: the token is the wallboard's credential (a kiosk logs in
    to nothing). The screen gets its queues' panels only, and the calls of those queues with
    callers masked when the wallboard lists calls; never a supervisor's rows.

    A token that does not work is told so with the close code REVOKED rather than refused at
    the handshake, so a screen that was away when it was revoked stops trying too.
    """

    screen: WallboardScreen

    async def connect(self) -> None:
        token = self.scope["url_route"]["kwargs"]["token"]
        screen = await database_sync_to_async(wallboard_screen)(token)
        await self.accept()
        if screen is None:
            await self.end(REVOKED)
            return
        self.screen, self.access_key = screen, screen.id
        await self.join(screen.organization_id, live.wallboard_group(screen.id))
        await self.send_snapshot()

    @staticmethod
    def read_access(keys: Collection[Any]) -> dict[Any, Any]:
        return working_wallboards(keys)

    async def apply_access(self, found: Any) -> None:
        # The admin tells a wallboard's screens at once (wallboard_changed); this is for a
        # wallboard revoked or deleted another way (the shell, SQL).
        if found != self.screen.token:
            await self.end(REVOKED)

    async def send_snapshot(self) -> None:
        screen = self.screen
        key = (self.org_id, screen.queues, screen.show_calls)
        known = _wall_snapshots.get(key)
        found = await store.read_snapshot(
            self.org_id, unless_version=known.version if known else None, wall=True
        )
        if found.rows is not None or known is None:
            known = _Snapshot(found.version, _wall_messages(found.rows or [], found.panels, screen))
            _wall_snapshots[key] = known
        self.version = found.version
        first, *rest = known.messages
        await self.send(text_data=first + render_status(found.status))
        for message in rest:
            await self.send(text_data=message)

    async def forward(self, event: dict[str, Any]) -> None:
        queues = self.screen.queues
        parts = []
        if self.screen.show_calls:
            # Table rows first: a browser parses a <tr> that follows a <section> as text.
            parts += [r for r in event.get("wall", {}).values() if _queue_of(r) in queues]
            parts.append(event.get("gone", ""))
        parts += [p for p in event.get("panels", {}).values() if _queue_of(p) in queues]
        text = "".join(parts)
        if text:
            await self.send(text_data=text)

    async def wallboard_changed(self, event: dict[str, Any]) -> None:
        """An admin saved, rotated, revoked or deleted this wallboard."""
        works = event.get("enabled") and event.get("token") == self.screen.token
        await self.end(CHANGED if works else REVOKED)


class _Rounds:
    """Every CALLBOARD_ACCESS_CHECK_SECONDS, every open screen of this process is read again:
    a few queries for all of them, per kind of screen, rather than a task and a query per
    screen (at ``make bench``'s 2,000 screens and 5 s, 400 queries a second through the one
    thread that runs database work). Signals end most screens at once; this is the backstop
    for what they cannot see. A round that fails (the database away) is logged and the next
    one tries again: screens are not closed on a failure to read."""

    def __init__(self) -> None:
        self.screens: set[_LiveConsumer] = set()
        self.task: asyncio.Task[None] | None = None

    def add(self, screen: _LiveConsumer) -> None:
        self.screens.add(screen)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run())

    def discard(self, screen: _LiveConsumer) -> None:
        self.screens.discard(screen)

    async def run(self) -> None:
        while self.screens:
            await asyncio.sleep(settings.CALLBOARD_ACCESS_CHECK_SECONDS)
            try:
                await self.check(list(self.screens))
            except Exception:
                log.warning("could not check the access of live screens", exc_info=True)

    async def check(self, screens: list[_LiveConsumer]) -> None:
        kinds: dict[type[_LiveConsumer], list[_LiveConsumer]] = defaultdict(list)
        for screen in screens:
            kinds[type(screen)].append(screen)
        for kind, of_kind in kinds.items():
            for start in range(0, len(of_kind), ROUND_BATCH):
                batch = of_kind[start : start + ROUND_BATCH]
                keys = {screen.access_key for screen in batch}
                found = await database_sync_to_async(kind.read_access)(keys)
                for screen in batch:
                    if not screen.ended:
                        await screen.apply_access(found.get(screen.access_key))


# One round per event loop (a process has one; tests run one per test).
_ALL_ROUNDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Rounds] = (
    weakref.WeakKeyDictionary()
)


def _rounds() -> _Rounds:
    return _ALL_ROUNDS.setdefault(asyncio.get_running_loop(), _Rounds())


# The data-queue attribute of a fragment's first tag: which queue a panel or row is about.
_DATA_QUEUE = re.compile(r'\sdata-queue="([^"]*)"')


def _queue_of(fragment: str) -> str | None:
    """The queue a rendered panel or row belongs to (its first tag's ``data-queue``); None
    for a fragment of no queue (the agents panel)."""
    found = _DATA_QUEUE.search(fragment, 0, max(fragment.find(">"), 0))
    return html.unescape(found.group(1)) if found else None


def _wall_messages(rows: list[str], panels: list[str], screen: WallboardScreen) -> list[str]:
    """A wallboard's snapshot: the server's version first (a page served by another version
    reloads), the panels of its queues, and its queues' masked rows when it lists calls."""
    head: str = render_to_string(WALL_VERSION_TEMPLATE, {"version": page_version()})
    head += "".join(p for p in panels if _queue_of(p) in screen.queues)
    if not screen.show_calls:
        return [head]
    first, *rest = _chunks([r for r in rows if _queue_of(r) in screen.queues])
    # The table body first: a browser parses a <tbody> that follows a <div> as text.
    head = render_to_string(WALL_SNAPSHOT_TEMPLATE, {"rows": first}) + head
    return [head, *("".join(c) for c in rest)]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    version: int
    messages: list[str]


# The snapshot as sent, per Organization, at its latest version: a screen's snapshot does not
# depend on who looks, so a burst of screens connecting (a deploy, a Redis restart) renders
# it once per process instead of once per screen.
_snapshots: dict[int, _Snapshot] = {}
# The same for wallboards, by what their snapshot depends on: Organization, queues, calls.
_wall_snapshots: dict[tuple[int, frozenset[str], bool], _Snapshot] = {}


def _snapshot_messages(rows: list[str], panels: list[str]) -> list[str]:
    first, *rest = _chunks(rows)
    # Rows after the first message arrive as out-of-band rows and are appended; the panels
    # (agents, queue figures) are out-of-band elements of their own, replaced by id.
    head = render_to_string(SNAPSHOT_TEMPLATE, {"rows": first}) + "".join(panels)
    return [head, *("".join(c) for c in rest)]


def _chunks(rows: list[str]) -> list[list[str]]:
    """``rows`` in consecutive runs of about SNAPSHOT_CHUNK characters; at least one run."""
    chunks: list[list[str]] = [[]]
    size = 0
    for row in rows:
        if size + len(row) > SNAPSHOT_CHUNK and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(row)
        size += len(row)
    return chunks

"""Websocket consumers: they relay. Check who is connecting, join the Organization's group,
send the snapshot, forward what the watcher broadcasts."""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from calls import live, store
from calls.models import Supervisor
from calls.rows import render_status
from calls.selectors import WallboardScreen, supervisor_of, wallboard_screen
from dashboard.version import page_version

SNAPSHOT_TEMPLATE = "calls/live.html#calls-snapshot"
WALL_SNAPSHOT_TEMPLATE = "calls/wallboard.html#wall-snapshot"
WALL_VERSION_TEMPLATE = "calls/wallboard.html#wall-version"
# Close codes a wallboard's page understands (static/wallboard.js): its token no longer
# works (the page says so and stops), or its settings changed (the page reloads).
REVOKED = 4001
CHANGED = 4002
# A snapshot of thousands of calls is several MB: send it in messages of about this many
# characters, below the 1 MiB a websocket peer accepts by default.
SNAPSHOT_CHUNK = 256 * 1024

log = logging.getLogger(__name__)


# channels ships no type information: its consumer base class types as Any.
class RelayConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """A websocket consumer whose handlers never touch the database after connecting.

    Channels closes stale database connections before every message it dispatches, with a
    hop to the one thread that runs database work; at thousands of messages a second that hop
    is where a daphne process spends its time (measured in ``make bench``). Database work here
    goes through ``database_sync_to_async``, which closes stale connections itself.
    """

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


class _LiveConsumer(RelayConsumer):
    """Shared relay: subclasses decide which Organization a socket may see."""

    org_id: int
    version = 0

    async def organization_for(self) -> int | None:
        raise NotImplementedError

    async def connect(self) -> None:
        org_id = await self.organization_for()
        if org_id is None:
            await self.close()  # before accept: the handshake is refused with 403
            return
        self.org_id = org_id
        self.groups = [live.org_group(org_id), live.STATUS_GROUP]
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_snapshot()

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
    """``/ws/calls/``: a logged-in supervisor's Organization, nothing else."""

    async def organization_for(self) -> int | None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return None
        supervisor: Supervisor | None = await database_sync_to_async(supervisor_of)(user)
        return supervisor.organization_id if supervisor else None


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
            await self.close(code=REVOKED)
            return
        self.screen, self.org_id = screen, screen.organization_id
        self.groups = [
            live.org_group(self.org_id),
            live.STATUS_GROUP,
            live.wallboard_group(screen.id),
        ]
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send_snapshot()

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
        await self.close(code=CHANGED if works else REVOKED)


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

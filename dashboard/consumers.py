"""Websocket consumers: they relay. Check who is connecting, join the Organization's group,
send the snapshot, forward what the watcher broadcasts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from calls import live, store
from calls.models import Supervisor, Wallboard
from calls.rows import render_status
from calls.selectors import supervisor_of

SNAPSHOT_TEMPLATE = "calls/live.html#calls-snapshot"
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
    to nothing), so an unknown or disabled token is refused."""

    async def organization_for(self) -> int | None:
        token = self.scope["url_route"]["kwargs"]["token"]
        org_id: int | None = await database_sync_to_async(_wallboard_org)(token)
        return org_id


def _wallboard_org(token: str) -> int | None:
    board = Wallboard.objects.filter(token=token, enabled=True).only("organization_id").first()
    return board.organization_id if board else None


@dataclass(frozen=True, slots=True)
class _Snapshot:
    version: int
    messages: list[str]


# The snapshot as sent, per Organization, at its latest version: a screen's snapshot does not
# depend on who looks, so a burst of screens connecting (a deploy, a Redis restart) renders
# it once per process instead of once per screen.
_snapshots: dict[int, _Snapshot] = {}


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

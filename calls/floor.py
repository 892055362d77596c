"""What follows the calls beside them: the parts of the live picture (agents, queue figures)
that the watcher publishes as panels with its calls (``Watcher.publish_panels``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

from calls.uapi.types import PhoneCall


class PanelSink(Protocol):
    """The watcher, as a floor sees it."""

    @property
    def organizations(self) -> list[int]: ...

    async def refresh_panels(self, org_id: int) -> None: ...


class Floor(Protocol):
    """A part of the live picture beside the calls."""

    async def calls_changed(
        self, org_id: int, calls: Mapping[str, PhoneCall], ended: Sequence[PhoneCall]
    ) -> None:
        """The Organization's live calls after a change, and the calls that have just ended
        (their last state seen). Runs before the change is published."""

    async def panels(self, org_id: int, calls: Mapping[str, PhoneCall]) -> dict[str, str]:
        """The Organization's panels now, each a rendered top-level element with a stable id
        and ``hx-swap-oob``, by name."""

    async def run(self, watcher: PanelSink, stop: asyncio.Event) -> None:
        """The floor's own loop until ``stop`` (polling agents, the turn of the day), calling
        ``watcher.refresh_panels`` when its panels changed. Never raises."""

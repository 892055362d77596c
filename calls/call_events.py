"""Call Event registration: ask VoipNow to tell Callboard's hook when watched extensions' calls
change, so the watcher refreshes at once instead of at its next poll."""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async

from calls.models import Extension
from calls.uapi.client import UapiClient
from calls.uapi.wire import CallEventType

log = logging.getLogger(__name__)

NOTE = "Callboard"


class CallEventRegistration:
    """The Call Events of every watched extension, pointed at ``hook_url``."""

    def __init__(self, uapi: UapiClient, hook_url: str) -> None:
        self.uapi = uapi
        self.hook_url = hook_url
        self.done = False

    async def ensure(self) -> None:
        """Register whatever is missing on each watched extension; idempotent.

        Raises UapiError when VoipNow refuses or cannot be reached; ``done`` stays False then,
        so the next call tries again.
        """
        numbers = await sync_to_async(_watched_extensions)()
        wanted = {int(t) for t in CallEventType}
        for number in numbers:
            existing = await self.uapi.list_call_events(extension=number)
            have = {e.type for e in existing if e.url == self.hook_url and e.status == 1}
            for event_type in sorted(wanted - have):
                await self.uapi.create_call_event(
                    extension=number, type=event_type, url=self.hook_url, method=1, note=NOTE
                )
        self.done = True
        log.info("call events registered on %d extensions", len(numbers))


def _watched_extensions() -> list[str]:
    # Call Events can be registered on Phone Terminals, Queues, Conferences and IVRs.
    kinds = [Extension.Type.PHONE_TERMINAL, Extension.Type.QUEUE]
    return list(Extension.objects.filter(type__in=kinds).values_list("number", flat=True))

"""Call Event registration: ask VoipNow to tell Callboard's hook when watched extensions' calls
change, so the watcher refreshes at once instead of at its next poll.

Registration runs beside polling and never holds it up: the live page works from polling alone,
and events only make it faster. Each extension and event type is registered on its own, so one
refusal costs only that type. Servers differ: VoipNow 3.x accepts types 0 Dial-In, 1 Dial-Out
and 2 Hangup and refuses the Answer types (3, 4) with ``pcet_type_invalid``; later versions
accept all five. A refusal is remembered and tried again hourly (and on restart), never per
poll. Registrations carry a note naming this installation, so a restart finds and reuses them
instead of piling up a second set, and ``manage.py voipnow_events --remove`` deletes exactly
ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

from calls.backoff import backoff
from calls.models import EventRegistration, Extension
from calls.uapi.client import UapiClient
from calls.uapi.errors import UapiError, UapiRejected
from calls.uapi.types import CallEventSubscription
from calls.uapi.wire import CallEventMethod, CallEventType

log = logging.getLogger(__name__)

WANTED = tuple(CallEventType)
# What Callboard wrote before registrations named their installation: ours only when it also
# points at our hook.
LEGACY_NOTE = "Callboard"
# Registrations in place, and types VoipNow refused, are checked again this often.
RECHECK_EVERY = 3600.0
# After VoipNow could not be reached, an extension is tried again after this, doubling.
RETRY_FIRST = 30.0
# New extensions an admin adds are picked up within this.
RESCAN_EVERY = 60.0


def installation_note() -> str:
    """The note on this installation's registrations: the same in every process and across
    restarts (it derives from SECRET_KEY), different between installations that share a
    VoipNow."""
    digest = salted_hmac("callboard.call-events", "installation", secret=settings.SECRET_KEY)
    return f"Callboard {digest.hexdigest()[:12]}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one event type on one extension."""

    type: int
    state: str
    voipnow_id: str = ""
    code: str = ""
    message: str = ""


class CallEventRegistration:
    """The Call Events of every watched extension, pointed at ``hook_url``."""

    def __init__(
        self,
        uapi: UapiClient,
        hook_url: str,
        *,
        note: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uapi = uapi
        self.hook_url = hook_url
        self.note = note or installation_note()
        self._clock = clock
        self._due: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._stop = asyncio.Event()

    def is_ours(self, registration: CallEventSubscription) -> bool:
        if registration.note == self.note:
            return True
        return registration.note == LEGACY_NOTE and registration.url == self.hook_url

    async def run(self, stop: asyncio.Event) -> None:
        """Keep every watched extension registered until ``stop`` is set. Never raises: the
        watcher polls whatever happens here."""
        self._stop = stop
        while not stop.is_set():
            try:
                wait = await self.reconcile_due()
            except Exception:  # a bug here must not end registration for the process's life
                log.exception("call event registration failed")
                wait = RESCAN_EVERY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    async def reconcile_due(self) -> float:
        """Check the extensions whose turn it is; returns the seconds until the next turn."""
        numbers = await sync_to_async(watched_extensions)()
        for number in numbers:
            if self._stop.is_set():
                break  # finish between extensions, never half-way through one's records
            if self._due.get(number, 0.0) <= self._clock():
                await self.reconcile(number)
        upcoming = [self._due.get(n, 0.0) for n in numbers]
        return max(0.0, min([RESCAN_EVERY, *(t - self._clock() for t in upcoming)]))

    async def reconcile(self, number: str) -> list[Outcome]:
        """Make ``number`` send every wanted event type to the hook, once each; record and
        return what became of each type. Never raises for VoipNow's answers."""
        try:
            outcomes = await self._register(number)
        except UapiError as exc:
            # Nothing could be read: what was registered may still be; say why it is unknown.
            failures = self._failures.get(number, 0) + 1
            self._failures[number] = failures
            self._due[number] = self._clock() + _backoff(failures)
            log.warning("cannot check the call events of %s: %s", number, exc.message)
            outcomes = [
                Outcome(t, EventRegistration.State.FAILED, message=exc.message) for t in WANTED
            ]
            await sync_to_async(_record)(number, outcomes, keep_registered=True)
            return outcomes
        failed = any(o.state == EventRegistration.State.FAILED for o in outcomes)
        self._failures[number] = self._failures.get(number, 0) + 1 if failed else 0
        self._due[number] = self._clock() + (
            _backoff(self._failures[number]) if failed else RECHECK_EVERY
        )
        await sync_to_async(_record)(number, outcomes, keep_registered=False)
        refused = [o.type for o in outcomes if o.state == EventRegistration.State.REFUSED]
        if refused:
            log.info("VoipNow refused call event types %s on %s", refused, number)
        return outcomes

    async def _register(self, number: str) -> list[Outcome]:
        existing = [
            e for e in await self.uapi.list_call_events(extension=number) if self.is_ours(e)
        ]
        outcomes = []
        for event_type in WANTED:
            mine = [e for e in existing if e.type == event_type]
            keep = next((e for e in mine if self._serves_us(e)), None)
            await self._remove([e for e in mine if e is not keep], number)
            if keep is not None:
                outcomes.append(Outcome(event_type, EventRegistration.State.REGISTERED, keep.id))
            else:
                outcomes.append(await self._create(number, event_type))
        return outcomes

    def _serves_us(self, registration: CallEventSubscription) -> bool:
        return (
            registration.url == self.hook_url
            and registration.status == 1
            and registration.method == CallEventMethod.POST
        )

    async def _create(self, number: str, event_type: int) -> Outcome:
        try:
            event_id = await self.uapi.create_call_event(
                extension=number,
                type=event_type,
                url=self.hook_url,
                method=CallEventMethod.POST,
                note=self.note,
            )
        except UapiRejected as exc:
            return Outcome(
                event_type, EventRegistration.State.REFUSED, code=exc.code, message=exc.message
            )
        except UapiError as exc:
            return Outcome(event_type, EventRegistration.State.FAILED, message=exc.message)
        return Outcome(event_type, EventRegistration.State.REGISTERED, event_id)

    async def _remove(self, registrations: Iterable[CallEventSubscription], number: str) -> None:
        """Delete duplicates and registrations that point elsewhere (an old hook URL)."""
        for registration in registrations:
            try:
                await self.uapi.delete_call_event(
                    extension=number, type=registration.type, event_id=registration.id
                )
            except UapiError as exc:
                log.warning("cannot remove call event %s of %s: %s", registration.id, number, exc)

    async def remove_all(self) -> list[tuple[str, CallEventSubscription]]:
        """Delete every registration of this installation on the watched extensions; returns
        what was deleted. Raises UapiError when VoipNow fails."""
        removed = []
        for number in await sync_to_async(watched_extensions)():
            for registration in await self.uapi.list_call_events(extension=number):
                if self.is_ours(registration):
                    await self.uapi.delete_call_event(
                        extension=number, type=registration.type, event_id=registration.id
                    )
                    removed.append((number, registration))
        await sync_to_async(EventRegistration.objects.all().delete)()
        return removed


def _backoff(failures: int) -> float:
    return backoff(failures, first=RETRY_FIRST, cap=RECHECK_EVERY)


def watched_extensions() -> list[str]:
    """The extensions whose Call Events the watcher wants: queues and phone terminals (VoipNow
    allows Phone Terminals, Queues, Conferences and IVRs)."""
    kinds = [Extension.Type.PHONE_TERMINAL, Extension.Type.QUEUE]
    return list(
        Extension.objects.filter(type__in=kinds).order_by("number").values_list("number", flat=True)
    )


def _record(number: str, outcomes: list[Outcome], *, keep_registered: bool) -> None:
    """Store what became of each type; with ``keep_registered``, a type last seen registered
    keeps that state (VoipNow could not be asked, so nothing says it is gone)."""
    extension = Extension.objects.filter(number=number).first()
    if extension is None:
        return
    now = timezone.now()
    for outcome in outcomes:
        row = EventRegistration.objects.filter(extension=extension, type=outcome.type).first()
        if keep_registered and row is not None and row.state == EventRegistration.State.REGISTERED:
            continue
        EventRegistration.objects.update_or_create(
            extension=extension,
            type=outcome.type,
            defaults={
                "state": outcome.state,
                "checked_at": now,
                **EventRegistration.clipped(
                    voipnow_id=outcome.voipnow_id, code=outcome.code, message=outcome.message
                ),
            },
        )


def summary() -> dict[str, dict[str, list[int]]]:
    """Per extension, the event types in each state, as last recorded (for ``/healthz``)."""
    out: dict[str, dict[str, list[int]]] = {}
    rows = EventRegistration.objects.values_list("extension__number", "state", "type")
    for number, state, event_type in rows.order_by("extension__number", "type"):
        out.setdefault(number, {}).setdefault(state, []).append(event_type)
    return out

"""Call Event registration against the emulator: per extension and type, beside polling,
refusals remembered, this installation's registrations found again and removed exactly."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from calls import call_events
from calls.call_events import CallEventRegistration
from calls.models import EventRegistration
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.wire import CallEventType

pytestmark = pytest.mark.django_db(transaction=True)

HOOK = "http://callboard.test/hooks/voipnow/s3cret/"
QUEUE = "0001*100"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def registered(emulator: Emulator, number: str = QUEUE) -> list[tuple[int, str, str | None]]:
    return sorted((int(r.type), r.url, r.note) for r in emulator.registrations_of(number))


@sync_to_async
def states(number: str = QUEUE) -> dict[int, str]:
    rows = EventRegistration.objects.filter(extension__number=number)
    return {row.type: row.state for row in rows}


async def test_every_watched_extension_gets_each_type_once_with_our_note(
    world: Any, emulator: Emulator, uapi: UapiClient
) -> None:
    registration = CallEventRegistration(uapi, HOOK)
    outcomes = await registration.reconcile(QUEUE)
    assert {o.state for o in outcomes} == {"registered"}
    note = call_events.installation_note()
    assert registered(emulator) == [(int(t), HOOK, note) for t in CallEventType]
    assert await states() == {int(t): "registered" for t in CallEventType}


async def test_a_restart_reuses_what_is_there_and_drops_duplicates(
    world: Any, emulator: Emulator, uapi: UapiClient
) -> None:
    await CallEventRegistration(uapi, HOOK).reconcile(QUEUE)
    before = {r.id for r in emulator.registrations_of(QUEUE)}
    # A duplicate, as a crash between create and record could leave.
    duplicate = await uapi.create_call_event(
        extension=QUEUE, type=2, url=HOOK, note=call_events.installation_note()
    )
    await CallEventRegistration(uapi, HOOK).reconcile(QUEUE)  # a new process
    after = {r.id for r in emulator.registrations_of(QUEUE)}
    assert len(after) == len(CallEventType)  # one of each type: nothing created, one dropped
    assert after <= before | {duplicate}
    assert registered(emulator) == [
        (int(t), HOOK, call_events.installation_note()) for t in CallEventType
    ]


async def test_what_an_earlier_version_registered_on_our_hook_is_adopted(
    world: Any, emulator: Emulator, uapi: UapiClient
) -> None:
    legacy = await uapi.create_call_event(extension=QUEUE, type=0, url=HOOK, note="Callboard")
    await CallEventRegistration(uapi, HOOK).reconcile(QUEUE)
    assert legacy in {r.id for r in emulator.registrations_of(QUEUE)}
    assert len(emulator.registrations_of(QUEUE)) == len(CallEventType)


async def test_a_registration_pointing_at_an_old_hook_is_replaced(
    world: Any, emulator: Emulator, uapi: UapiClient
) -> None:
    note = call_events.installation_note()
    await uapi.create_call_event(extension=QUEUE, type=1, url="http://old.test/hook/", note=note)
    await CallEventRegistration(uapi, HOOK).reconcile(QUEUE)
    assert {url for _, url, _ in registered(emulator)} == {HOOK}


async def test_others_registrations_are_left_alone_and_remove_deletes_only_ours(
    world: Any, emulator: Emulator, uapi: UapiClient
) -> None:
    theirs = await uapi.create_call_event(
        extension=QUEUE, type=0, url="http://crm.test/", note="CRM"
    )
    registration = CallEventRegistration(uapi, HOOK)
    await registration.reconcile(QUEUE)
    assert theirs in {r.id for r in emulator.registrations_of(QUEUE)}
    removed = await registration.remove_all()
    assert {number for number, _ in removed} == {QUEUE}
    assert [r.id for r in emulator.registrations_of(QUEUE)] == [theirs]
    assert await states() == {}


async def test_when_voipnow_cannot_be_reached_it_is_recorded_and_tried_again_soon(
    world: Any, emulator: Emulator, uapi: UapiClient
) -> None:
    clock = Clock()
    registration = CallEventRegistration(uapi, HOOK, clock=clock)
    fault = emulator.faults.add({"path": "/uapi/extensions", "kind": "status", "status": 503})
    outcomes = await registration.reconcile(QUEUE)
    assert {o.state for o in outcomes} == {"failed"}
    assert set((await states()).values()) == {"failed"}
    emulator.faults.faults.remove(fault)
    clock.now += 60 * 60  # well past the first retry, before the hourly recheck of others
    wait = await registration.reconcile_due()
    assert set((await states()).values()) == {"registered"}
    assert wait > 0

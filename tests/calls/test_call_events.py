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
from tests.conftest import EMULATOR_URL, every_voipnow
from tests.support.transport import EmulatorTransport

pytestmark = [pytest.mark.django_db(transaction=True), every_voipnow]

HOOK = "http://callboard.test/hooks/voipnow/s3cret/"
QUEUE = "0001*100"
# VoipNow 3.x refuses the Answer types with pcet_type_invalid; 5.x takes all five.
ACCEPTED = {5: tuple(CallEventType), 3: tuple(CallEventType)[:3]}


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
    world: Any, emulator: Emulator, uapi: UapiClient, voipnow_version: int
) -> None:
    registration = CallEventRegistration(uapi, HOOK)
    await registration.reconcile(QUEUE)
    note = call_events.installation_note()
    accepted = ACCEPTED[voipnow_version]
    assert registered(emulator) == [(int(t), HOOK, note) for t in accepted]
    assert await states() == {
        int(t): "registered" if t in accepted else "refused" for t in CallEventType
    }


async def test_a_restart_reuses_what_is_there_and_drops_duplicates(
    world: Any, emulator: Emulator, uapi: UapiClient, voipnow_version: int
) -> None:
    await CallEventRegistration(uapi, HOOK).reconcile(QUEUE)
    before = {r.id for r in emulator.registrations_of(QUEUE)}
    # A duplicate, as a crash between create and record could leave.
    duplicate = await uapi.create_call_event(
        extension=QUEUE, type=2, url=HOOK, note=call_events.installation_note()
    )
    await CallEventRegistration(uapi, HOOK).reconcile(QUEUE)  # a new process
    after = {r.id for r in emulator.registrations_of(QUEUE)}
    # One of each type VoipNow takes: nothing created, the duplicate dropped.
    assert len(after) == len(ACCEPTED[voipnow_version])
    assert after <= before | {duplicate}
    assert registered(emulator) == [
        (int(t), HOOK, call_events.installation_note()) for t in ACCEPTED[voipnow_version]
    ]


async def test_what_an_earlier_version_registered_on_our_hook_is_adopted(
    world: Any, emulator: Emulator, uapi: UapiClient, voipnow_version: int
) -> None:
    legacy = await uapi.create_call_event(extension=QUEUE, type=0, url=HOOK, note="Callboard")
    await CallEventRegistration(uapi, HOOK).reconcile(QUEUE)
    assert legacy in {r.id for r in emulator.registrations_of(QUEUE)}
    assert len(emulator.registrations_of(QUEUE)) == len(ACCEPTED[voipnow_version])


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
    assert "failed" not in set((await states()).values())
    assert wait > 0


@pytest.mark.parametrize("voipnow_version", [3], indirect=True)
async def test_voipnow_3_refuses_the_answer_types_and_they_wait_an_hour(
    world: Any, emulator_app: Any, emulator: Emulator
) -> None:
    transport = EmulatorTransport(emulator_app)
    clock = Clock()
    async with UapiClient(EMULATOR_URL, "demo-app", "demo-secret", transport=transport) as uapi:
        registration = CallEventRegistration(uapi, HOOK, clock=clock)
        await registration.reconcile_due()  # every watched extension, as on start
        assert await states() == {0: "registered", 1: "registered", 2: "registered"} | {
            3: "refused",
            4: "refused",
        }
        watched = await sync_to_async(call_events.watched_extensions)()
        refused = [s for m, p, s in transport.sent if m == "POST" and s == 400]
        assert len(refused) == 2 * len(watched)
        transport.sent.clear()
        clock.now += 59 * 60
        await registration.reconcile_due()
        assert not any(m == "POST" for m, _, _ in transport.sent)  # not tried again yet
        clock.now += 2 * 60
        await registration.reconcile_due()
        posts = [p for m, p, _ in transport.sent if m == "POST"]
        # The hour is up: the refused types (only) are asked for again on every extension.
        assert len(posts) == 2 * len(watched)

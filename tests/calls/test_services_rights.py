"""Rights per mode: listen, whisper and barge in are three rights, held through a group or
directly; the service refuses a mode whose right the supervisor lacks, and audits it."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, Permission, User

from calls.exceptions import NotAllowed
from calls.live import Watcher
from calls.models import Supervisor
from calls.selectors import may_barge, modes_held
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from tests.calls.test_services import ask, attempts
from tests.conftest import AnsweredCall, answered_call

pytestmark = pytest.mark.django_db(transaction=True)

RIGHTS = {"barge": "barge_in", "whisper": "whisper", "listen": "listen"}
ACTIONS = {"barge": "BargeIn", "whisper": "Whisper", "listen": "Monitor"}
REFUSALS = {
    "barge": "You may not barge in on calls: ask an admin for the right.",
    "whisper": "You may not whisper to agents on calls: ask an admin for the right.",
    "listen": "You may not listen to calls: ask an admin for the right.",
}


@sync_to_async
def holding(user: User, codenames: set[str], *, via: str) -> User:
    """``user`` with exactly the rights ``codenames``, given through a group of their own or
    directly; a fresh object, so its permission cache is empty."""
    user.groups.clear()
    user.user_permissions.clear()
    rights = Permission.objects.filter(content_type__app_label="calls", codename__in=codenames)
    assert rights.count() == len(codenames)
    if via == "group":
        group = Group.objects.create(name=f"holds {' '.join(sorted(codenames)) or 'nothing'}")
        group.permissions.set(rights)
        user.groups.add(group)
    else:
        user.user_permissions.set(rights)
    return User.objects.get(pk=user.pk)


@pytest.fixture
async def call(emulator: Emulator, watcher: Watcher) -> AnsweredCall:
    return await answered_call(emulator, watcher)


@pytest.mark.parametrize("via", ["group", "user"])
@pytest.mark.parametrize("mode", ["barge", "whisper", "listen"])
async def test_a_mode_is_allowed_with_its_right_alone(
    mode: str, via: str, alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    alice = await holding(alice, {RIGHTS[mode]}, via=via)

    result = await ask(uapi, alice, call, mode=mode)

    assert result.message.startswith("0001*024 is ringing")
    assert [r["action"] for r in emulator.rings] == [ACTIONS[mode]]
    [row] = await attempts()
    assert (row.mode, row.outcome, row.http_status) == (mode, "accepted", 200)


@pytest.mark.parametrize("via", ["group", "user"])
@pytest.mark.parametrize("mode", ["barge", "whisper", "listen"])
async def test_a_mode_is_refused_without_its_right_even_with_the_other_two(
    mode: str, via: str, alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    alice = await holding(alice, set(RIGHTS.values()) - {RIGHTS[mode]}, via=via)

    with pytest.raises(NotAllowed) as refused:
        await ask(uapi, alice, call, mode=mode)

    assert refused.value.status == 403
    assert refused.value.message == REFUSALS[mode]
    assert emulator.rings == []
    [row] = await attempts()
    assert (row.mode, row.outcome, row.http_status) == (mode, "refused", 403)
    assert row.message == REFUSALS[mode]


@pytest.mark.parametrize("via", ["group", "user"])
async def test_without_any_right_every_mode_is_refused_before_the_call_is_looked_at(
    via: str, alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    alice = await holding(alice, set(), via=via)
    for mode in RIGHTS:
        with pytest.raises(NotAllowed, match="not allowed to barge in"):
            await ask(uapi, alice, call, mode=mode)
    assert emulator.rings == []
    assert [(a.mode, a.outcome) for a in await attempts()] == [(mode, "refused") for mode in RIGHTS]


@pytest.mark.parametrize("via", ["group", "user"])
@pytest.mark.parametrize(
    "codenames",
    [set(), {"listen"}, {"whisper"}, {"barge_in"}, {"listen", "whisper"}, set(RIGHTS.values())],
    ids=lambda c: "+".join(sorted(c)) or "none",
)
async def test_a_supervisor_may_join_calls_when_holding_at_least_one_mode(
    codenames: set[str], via: str, alice: User
) -> None:
    alice = await holding(alice, codenames, via=via)
    supervisor = await Supervisor.objects.select_related("organization").aget(user=alice)

    held = await sync_to_async(modes_held)(alice)

    assert held == [mode for mode, right in RIGHTS.items() if right in codenames]
    assert await sync_to_async(may_barge)(alice, supervisor) is bool(codenames)
    # A user who is no supervisor may not, whatever rights they hold.
    assert await sync_to_async(may_barge)(alice, None) is False


async def test_the_demo_supervisors_group_holds_all_three(alice: User) -> None:
    held = await sync_to_async(modes_held)(alice)
    assert held == ["barge", "whisper", "listen"]

"""The barge-in's promise over any input: whatever strings are posted for its fields (through
the form, as the view passes them to the service), the answer is a refusal of Callboard's own
with its status and one audit row and nothing sent to VoipNow, or one accepted PUT whose
every field is valid. Never an exception that escapes, never a request for invalid input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.http import QueryDict
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from calls.exceptions import AlreadyRinging, BadInput, NoSuchCall, NotAllowed, Refused
from calls.live import Watcher
from calls.models import CALLER_ID_RE, CONTROL_RE, BargeInAttempt, Organization
from calls.services import barge_in
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from dashboard.forms import BargeForm
from tests.conftest import EMULATOR_URL, AnsweredCall, answered_call
from tests.support.transport import EmulatorTransport

pytestmark = pytest.mark.django_db(transaction=True)

RIGHTS = {"barge": "barge_in", "whisper": "whisper", "listen": "listen"}
ACTIONS = {"barge": "BargeIn", "whisper": "Whisper", "listen": "Monitor"}
ALICES_PHONES = {"0001*024", "0001*025"}
ACME_REASONS = "Coaching\nComplaint"

# An example is a request of valid fields, up to three of which are spoiled: a value just past an
# edge (201 characters, 601 seconds), a valid one with a stray character, any text at all, or
# nothing posted. So accepted requests and every kind of refusal are all drawn (about one in
# six accepted).
VALID: dict[str, list[str]] = {
    # The emulator's views of an answered queue call: the caller's and the agent's.
    "phone_call_view_id": ["00", "01"],
    "send_call_to": ["0001*024", "0001*025"],
    "caller_id": ["", "Quality Team <+3334444>", "A" * 196 + " <1>", "  Ann <1>  "],
    "wait_for_pickup": ["", "1", "600", " 25 "],
    # Left out (empty), the mode is the contract's default, barge.
    "mode": ["barge", "whisper", "listen", ""],
    # Valid or not by Acme's rule of the example.
    "reason": ["", "Coaching", "  Complaint  ", "x" * 500],
}
PAST_THE_EDGE: dict[str, list[str]] = {
    "phone_call_view_id": ["02", "1", ""],
    "send_call_to": ["0001*201", "0001*100", "0002*024", ""],
    "caller_id": ["A" * 197 + " <1>", "Ann <1>\n", "Ann <1>\r", "Ann <1>\u2028"],
    "wait_for_pickup": ["601", "0", "+5", "1" * 5000],
    "mode": ["Listen", "barge ", "\nbarge"],
    "reason": ["x" * 501, "Coaching\n", "Coach\x00ing"],
}
FIELDS = tuple(VALID)


# Every line break str.splitlines() knows, NUL and tab: the characters a valid value may hide.
STRAY = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00\t"


def with_one_more(value: str, character: str, where: str) -> str:
    # At either end, where strip() would quietly take a line break away, or inside.
    at = {"start": 0, "end": len(value), "inside": len(value) // 2}[where]
    return value[:at] + character + value[at:]


def spoiled(name: str) -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.sampled_from(PAST_THE_EDGE[name]),
        # A valid value with one stray character.
        st.builds(
            with_one_more,
            st.sampled_from(VALID[name]),
            st.one_of(st.sampled_from(STRAY), st.characters()),
            st.sampled_from(["start", "end", "inside"]),
        ),
        st.text(max_size=300),
        st.none(),
    )


@st.composite
def typed_fields(draw: st.DrawFn) -> dict[str, str | None]:
    """Each field as posted; None: not posted."""
    broken = draw(st.sets(st.sampled_from(FIELDS), max_size=3))
    return {
        name: draw(spoiled(name) if name in broken else st.sampled_from(VALID[name]))
        for name in FIELDS
    }


@dataclass(frozen=True)
class Posted:
    fields: dict[str, str | None]  # None: not posted
    extra: dict[str, str]  # fields the form does not know
    address: str | None
    rights: frozenset[str]
    reason_required: bool
    reasons: str


posted = st.builds(
    Posted,
    fields=typed_fields(),
    extra=st.dictionaries(
        st.text(min_size=1, max_size=20).filter(lambda name: name not in FIELDS),
        st.text(max_size=50),
        max_size=3,
    ),
    address=st.one_of(st.none(), st.ip_addresses().map(str), st.text(max_size=40)),
    # Mostly all three rights, so that most requests reach the checks of their fields.
    rights=st.one_of(
        st.just(frozenset(RIGHTS.values())),
        st.frozensets(st.sampled_from(sorted(RIGHTS.values())), min_size=1),
    ),
    reason_required=st.booleans(),
    reasons=st.sampled_from(["", ACME_REASONS]),
)


@sync_to_async
def arrange(user: User, example: Posted) -> User:
    """A clean slate for one example: no audit rows, Acme's reason rule, the user's rights."""
    BargeInAttempt.objects.all().delete()
    Organization.objects.filter(name="Acme").update(
        reason_required=example.reason_required, reasons=example.reasons
    )
    user.groups.clear()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="calls", codename__in=example.rights)
    )
    return User.objects.get(pk=user.pk)


@sync_to_async
def audit() -> list[BargeInAttempt]:
    return list(BargeInAttempt.objects.all())


def form_data(example: Posted) -> QueryDict:
    """The fields as a request's POST holds them: the unknown ones too, the missing ones not."""
    data = QueryDict(mutable=True)
    data.update(example.extra)
    data.update({name: value for name, value in example.fields.items() if value is not None})
    return data


def check_accepted(example: Posted, ring: dict[str, Any], row: BargeInAttempt, call: Any) -> None:
    """Every field of an accepted request is valid, and is what the supervisor typed."""
    typed = {name: value or "" for name, value in example.fields.items()}
    mode = typed["mode"] or "barge"
    assert RIGHTS.get(mode) in example.rights
    assert ring["action"] == ACTIONS[mode]
    assert ring["sendCallTo"] == typed["send_call_to"] in ALICES_PHONES
    assert ring["targetViewId"] == typed["phone_call_view_id"] in call.views
    # A line break or control character anywhere, even one strip() would take away, is refused.
    assert not CONTROL_RE.search(typed["caller_id"] + typed["reason"])
    caller_id = typed["caller_id"].strip()
    if caller_id:
        assert ring["callerId"] == caller_id == row.caller_id
        assert CALLER_ID_RE.match(caller_id)
        assert len(caller_id) <= 200
    else:
        assert row.caller_id == ""
    wait = typed["wait_for_pickup"].strip()
    if wait:
        assert ring["waitForPickup"] == int(wait) == int(row.wait_for_pickup)
        assert 1 <= int(wait) <= 600
    reason = typed["reason"].strip()
    assert row.reason == reason
    assert len(reason) <= 500
    assert reason or not example.reason_required
    assert not reason or not example.reasons or reason in ACME_REASONS.splitlines()


@settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(example=posted)
async def test_any_input_is_refused_with_one_audit_row_or_sent_valid(
    example: Posted, alice: User, emulator: Emulator, watcher: Watcher, emulator_app: Any
) -> None:
    # One example after another in the same test: each starts from a VoipNow with one answered
    # call and no ringing guard.
    user = await arrange(alice, example)
    emulator.reset()
    await cache.aclear()
    call = await answered_call(emulator, watcher)
    rings_before = len(emulator.rings)
    transport = EmulatorTransport(emulator_app)
    refusal: Refused | None = None
    async with UapiClient(EMULATOR_URL, "demo-app", "demo-secret", transport=transport) as uapi:
        try:
            await barge_in(
                user=user,
                call_id=call.id,
                address=example.address,
                uapi=uapi,
                **BargeForm(form_data(example)).typed(),
            )
        except Refused as exc:  # anything else escapes and fails the test
            refusal = exc
    if refusal is not None:
        event(f"refused {refusal.status}")
        assert isinstance(refusal, BadInput | NotAllowed | NoSuchCall | AlreadyRinging)
        assert refusal.status in (400, 403, 404, 409)
        assert refusal.message
        [row] = await audit()
        assert (row.outcome, row.http_status) == ("refused", refusal.status)
        assert transport.sent == []  # not even a token
        assert len(emulator.rings) == rings_before
        return
    event("accepted")
    puts = [sent for sent in transport.sent if sent[0] == "PUT"]
    assert len(puts) == 1
    assert puts[0][2] < 300
    [row] = await audit()
    assert (row.outcome, row.http_status) == ("accepted", 200)
    assert len(emulator.rings) == rings_before + 1
    check_accepted(example, emulator.rings[-1], row, emulator.calls[call.id])


def valid_fields(call: AnsweredCall) -> dict[str, str | None]:
    return {
        "phone_call_view_id": call.agent_view,
        "send_call_to": "0001*024",
        "caller_id": "Ann <1>",
        "wait_for_pickup": "25",
        "mode": "listen",
        "reason": "Coaching",
    }


async def test_the_valid_fields_the_next_property_spoils_are_accepted(
    alice: User, emulator: Emulator, watcher: Watcher, uapi: UapiClient
) -> None:
    call = await answered_call(emulator, watcher)
    example = Posted(valid_fields(call), {}, None, frozenset(RIGHTS.values()), False, "")
    await barge_in(user=alice, call_id=call.id, uapi=uapi, **BargeForm(form_data(example)).typed())
    assert [a.outcome for a in await audit()] == ["accepted"]


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(FIELDS),
    data=st.data(),
    character=st.one_of(st.sampled_from(STRAY), st.characters(categories=["Cc", "Zl", "Zp"])),
    where=st.sampled_from(["start", "end", "inside"]),
)
async def test_a_valid_field_with_a_line_break_or_control_character_is_refused(
    name: str,
    data: st.DataObject,
    character: str,
    where: str,
    alice: User,
    emulator: Emulator,
    watcher: Watcher,
    emulator_app: Any,
) -> None:
    emulator.reset()
    await cache.aclear()
    call = await answered_call(emulator, watcher)
    fields = valid_fields(call)
    valid = fields[name] or ""
    fields[name] = with_one_more(
        data.draw(st.sampled_from([valid, *VALID[name]])), character, where
    )
    example = Posted(fields, {}, None, frozenset(RIGHTS.values()), False, "")
    user = await arrange(alice, example)
    transport = EmulatorTransport(emulator_app)
    async with UapiClient(EMULATOR_URL, "demo-app", "demo-secret", transport=transport) as uapi:
        with pytest.raises((BadInput, NotAllowed)):
            await barge_in(
                user=user, call_id=call.id, uapi=uapi, **BargeForm(form_data(example)).typed()
            )
    [row] = await audit()
    assert row.outcome == "refused"
    assert transport.sent == []

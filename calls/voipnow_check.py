"""What works against the configured VoipNow, checked before going live
(``python manage.py voipnow_check``).

Each check is one row: ``ok``, ``degraded`` (the live page works, less well) or ``failed``
(the live page cannot work). Nothing here rings a phone: the actions are judged from the
configured version, the event types by registering a test registration and removing it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings

from calls.call_events import watched_extensions
from calls.models import Extension, Organization
from calls.services import modes_offered
from calls.uapi.client import PAGE_SIZE, UapiClient
from calls.uapi.errors import UapiError, UapiRejected
from calls.uapi.wire import CallEventType

OK, DEGRADED, FAILED = "ok", "degraded", "failed"
CHECK_NOTE = "Callboard check"


@dataclass(frozen=True, slots=True)
class Row:
    check: str
    result: str
    detail: str


async def check_voipnow(uapi: UapiClient) -> list[Row]:
    """The checks that need VoipNow, in order; stops after the first that fails the live
    page, since the rest would fail the same way."""
    rows = [await _listing(uapi)]
    if rows[0].result == FAILED:
        return rows
    rows.append(await _organizations(uapi))
    rows.append(await _page_size(uapi))
    rows.append(await _event_types(uapi))
    rows.append(_modes())
    return rows


async def _listing(uapi: UapiClient) -> Row:
    try:
        page = await uapi.list_calls_page(count=1)
    except UapiError as exc:
        return Row("token and List PhoneCalls", FAILED, exc.message)
    total = "" if page.total is None else f"; {page.total} live calls"
    return Row("token and List PhoneCalls", OK, f"{uapi.base_url} answers{total}")


async def _organizations(uapi: UapiClient) -> Row:
    ours = await sync_to_async(
        lambda: dict(Organization.objects.values_list("voipnow_id", "name"))
    )()
    try:
        calls = await uapi.list_calls()
    except UapiError as exc:
        return Row("organizations seen", FAILED, exc.message)
    owners = Counter(call.owner_id for call in calls)
    seen = [f"{ours[o]} ({n} calls)" for o, n in sorted(owners.items()) if o in ours]
    others = sorted(set(owners) - set(ours))
    missing = sorted(name for vid, name in ours.items() if vid not in owners)
    if not calls:
        return Row("organizations seen", DEGRADED, "no live call now: try again during traffic")
    detail = "; ".join(
        part
        for part in (
            f"calls of {', '.join(seen)}" if seen else "",
            f"no call now of {', '.join(missing)}" if missing else "",
            f"ownerIds not configured: {', '.join(others)}" if others else "",
        )
        if part
    )
    return Row("organizations seen", OK if seen else DEGRADED, detail)


async def _page_size(uapi: UapiClient) -> Row:
    try:
        await uapi.list_calls_page(count=PAGE_SIZE)
    except UapiRejected as exc:
        return Row("page size", FAILED, f"count={PAGE_SIZE} refused ({exc.code})")
    except UapiError as exc:
        return Row("page size", DEGRADED, exc.message)
    return Row("page size", OK, f"count={PAGE_SIZE} accepted; pages followed")


async def _event_types(uapi: UapiClient) -> Row:
    numbers = await sync_to_async(watched_extensions)()
    if not numbers:
        return Row("Call Event types", DEGRADED, "no queue or phone extension configured")
    number = await sync_to_async(_a_queue_first)(numbers)
    accepted, refused = [], []
    for event_type in CallEventType:
        try:
            event_id = await uapi.create_call_event(
                extension=number,
                type=event_type,
                url=f"{settings.CALLBOARD_PUBLIC_URL}/",  # never called: removed at once
                note=CHECK_NOTE,
            )
        except UapiRejected as exc:
            refused.append(f"{event_type.name.lower()} ({exc.code})")
            continue
        except UapiError as exc:
            return Row("Call Event types", DEGRADED, f"on {number}: {exc.message}")
        accepted.append(event_type.name.lower())
        await uapi.delete_call_event(extension=number, type=event_type, event_id=event_id)
    detail = f"on {number}: accepted {', '.join(accepted) or 'none'}"
    if refused:
        detail += f"; refused {', '.join(refused)}"
    if not accepted:
        return Row("Call Event types", DEGRADED, detail + ": polling only")
    return Row("Call Event types", OK, detail)


def _organizations_by_voipnow_id() -> dict[str, str]:
    return dict(Organization.objects.values_list("voipnow_id", "name"))


def _a_queue_first(numbers: list[str]) -> str:
    queue = Extension.objects.filter(number__in=numbers, type=Extension.Type.QUEUE).first()
    return queue.number if queue else numbers[0]


def _modes() -> Row:
    offered = modes_offered()
    missing = [m for m in ("barge", "whisper", "listen") if m not in offered]
    detail = f"VoipNow {settings.VOIPNOW_VERSION}: {', '.join(offered)}"
    if missing:
        detail += f"; not {', '.join(missing)} (listening needs 5.6)"
    return Row("modes", OK, detail)

"""Thin views: parse, call one service or selector, render; our exceptions become a fragment
with a fitting status."""

from __future__ import annotations

import csv
import logging
from collections.abc import AsyncIterator, Iterator
from itertools import islice
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from calls import call_events, store
from calls.audit import attempts_for, audit_reader, audit_rows, csv_rows, suggestions
from calls.connection import uapi_client
from calls.exceptions import CallboardError
from calls.figures import export_rows, local_day, supervised_queue
from calls.models import Wallboard
from calls.selectors import (
    barge_target,
    may_barge,
    modes_held,
    phones_of,
    supervisor_of,
    wallboard_queues,
)
from calls.services import barge_in, leave_call, modes_offered
from calls.supervising import on_call_now
from dashboard.forms import AuditFilterForm, BargeForm
from dashboard.version import page_version

log = logging.getLogger(__name__)


@require_GET
def live_calls(request: HttpRequest) -> HttpResponse:
    supervisor = supervisor_of(request.user)
    return render(
        request,
        "calls/live.html",
        {
            "organization": supervisor.organization if supervisor else None,
            "can_barge": may_barge(request.user, supervisor),
            "ws_url": "/ws/calls/",
            "status": store.current_status(),
        },
    )


@login_not_required
@require_GET
def wallboard(request: HttpRequest, token: str) -> HttpResponse:
    board = Wallboard.objects.select_related("organization").filter(token=token, enabled=True)
    found = board.first()
    if found is None:
        # A TV that reloads on a revoked address says so rather than show an error page.
        return render(request, "calls/wallboard.html", {"board": None}, status=404)
    return render(
        request,
        "calls/wallboard.html",
        {
            "board": found,
            "organization": found.organization,
            "queues": wallboard_queues(found),
            "ws_url": f"/ws/wallboard/{found.token}/",
            "status": store.current_status(),
            "version": page_version(),
        },
    )


@require_http_methods(["GET", "POST"])
async def barge(request: HttpRequest, call_id: str) -> HttpResponse:
    user = await request.auser()
    if request.method == "GET":
        return await sync_to_async(_barge_dialog)(request, user, call_id)
    # As typed: the service checks every field, refuses what is not valid and audits it.
    typed = BargeForm(request.POST).typed()
    try:
        result = await barge_in(
            user=user,
            call_id=call_id,
            phone_call_view_id=typed["phone_call_view_id"],
            send_call_to=typed["send_call_to"],
            caller_id=typed["caller_id"],
            wait_for_pickup=typed["wait_for_pickup"],
            mode=typed["mode"],
            reason=typed["reason"],
            # The peer's address (daphne's client); X-Forwarded-For is not trusted: a proxy in
            # front must pass the client's address to daphne (docs/security.md).
            address=request.META.get("REMOTE_ADDR"),
            uapi=uapi_client(),
        )
    except CallboardError as exc:
        return _refusal(request, exc)
    return render(
        request,
        "calls/barge.html#result",
        {"ok": True, "message": result.message, "cancel_call_id": result.call_id},
    )


def _barge_dialog(request: HttpRequest, user: Any, call_id: str) -> HttpResponse:
    supervisor = supervisor_of(user)
    try:
        target = barge_target(user, supervisor, call_id)
    except CallboardError as exc:
        return _refusal(request, exc)
    call = target.call
    agent = call.agent_view or (call.views[0] if call.views else None)
    supported, held = modes_offered(), modes_held(user)
    organization = target.supervisor.organization
    return render(
        request,
        "calls/barge.html#dialog",
        {
            "call": call,
            "supervisor": target.supervisor,
            "phones": phones_of(target.supervisor),
            "modes": [mode for mode in supported if mode in held],
            "withheld": [mode for mode in supported if mode not in held],
            "supported": supported,
            "reason_required": organization.reason_required,
            "reasons": organization.reason_choices,
            "default_view": agent.id if agent else "",
            "on_call": on_call_now(call.organization_id, call.id, call.views),
        },
    )


def _refusal(request: HttpRequest, exc: CallboardError) -> HttpResponse:
    return render(
        request,
        "calls/barge.html#result",
        {"ok": False, "message": exc.message, "status": exc.status},
        status=exc.status,
    )


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and freshness for load balancers and monitors: 200 when the database answers;
    the watcher's state is reported, not judged."""
    try:
        connection.ensure_connection()
        db_ok = True
    except Exception:  # any driver error means "not healthy"
        log.exception("healthz: database unreachable")
        db_ok = False
    status = store.current_status()
    body: dict[str, Any] = {"ok": db_ok, "database": db_ok, "watcher": status}
    if db_ok:
        # Which extensions send which Call Events (by state), as the watcher last found them.
        body["call_events"] = call_events.summary()
    return JsonResponse(body, status=200 if db_ok else 503)


# Rows per hop to the database thread while streaming an export.
EXPORT_BATCH = 500


@require_GET
async def queue_today_csv(request: HttpRequest, queue: str) -> StreamingHttpResponse:
    """Today's records of one of the supervisor's queues, as CSV, streamed; 404 for a queue
    of another Organization."""
    user = await request.auser()
    found = await sync_to_async(supervised_queue)(user, queue)
    if found is None:
        raise Http404("No such queue.")
    now = timezone.now()
    response = StreamingHttpResponse(
        _csv_lines(export_rows(found, now)), content_type="text/csv; charset=utf-8"
    )
    day = local_day(found.organization.time_zone, now)
    name = f"queue-{found.number.replace('*', '-')}-{day.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


async def _csv_lines(rows: Iterator[list[str]]) -> AsyncIterator[str]:
    # Async, so that daphne streams it: Django reads a sync iterator whole before sending it
    # under ASGI. The rows come from the database thread a batch at a time.
    writer = csv.writer(_Echo())
    while batch := await sync_to_async(lambda: list(islice(rows, EXPORT_BATCH)))():
        yield "".join(writer.writerow(row) for row in batch)


# ---- the audit -----------------------------------------------------------------------------

AUDIT_PAGE_SIZE = 50


@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    """The audit of the reader's Organization (every one for a superuser), filtered, 50 rows
    a page; 403 without the right, 400 with the form's errors for a filter that makes no
    sense."""
    try:
        reader = audit_reader(request.user)
    except CallboardError as exc:
        return render(request, "calls/audit.html", {"refused": exc.message}, status=exc.status)
    form = AuditFilterForm(request.GET, reader=reader)
    context: dict[str, Any] = {"form": form, "reader": reader}
    if not form.is_valid():
        context["suggestions"] = suggestions(reader)
        return render(request, "calls/audit.html", context, status=400)
    filters = form.filters()
    page = Paginator(attempts_for(reader, filters), AUDIT_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context |= {
        "page": page,
        "rows": audit_rows(page),
        "suggestions": suggestions(reader, filters.organization),
    }
    return render(request, "calls/audit.html", context)


@require_GET
async def audit_export(request: HttpRequest) -> HttpResponseBase:
    """The rows the same filters select on the audit page, as CSV, streamed, every row."""
    user = await request.auser()
    try:
        reader = await sync_to_async(audit_reader)(user)
    except CallboardError as exc:
        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    form = AuditFilterForm(request.GET, reader=reader)
    if not await sync_to_async(form.is_valid)():
        return HttpResponse(
            form.errors.as_text(), status=400, content_type="text/plain; charset=utf-8"
        )
    # Built in the database thread: across Organizations it reads their time zones.
    attempts = await sync_to_async(attempts_for)(reader, form.filters())
    response = StreamingHttpResponse(
        _csv_lines(csv_rows(attempts)), content_type="text/csv; charset=utf-8"
    )
    day = local_day(reader.time_zone, timezone.now())
    response["Content-Disposition"] = f'attachment; filename="audit-{day.isoformat()}.csv"'
    return response


# ---- cancel and leave: the supervisor's own leg ----------------------------------------------


@require_POST
async def cancel_join(request: HttpRequest, call_id: str) -> HttpResponse:
    """Cancel while the supervisor's phone rings (the dialog's Cancel, a row's Cancel)."""
    return await _own_leg_hung_up(request, call_id)


@require_POST
async def leave(request: HttpRequest, call_id: str) -> HttpResponse:
    """Leave a call the supervisor's phone joined (a row's Leave)."""
    return await _own_leg_hung_up(request, call_id)


async def _own_leg_hung_up(request: HttpRequest, call_id: str) -> HttpResponse:
    # One service for both: whether the leg rang or had joined is VoipNow's to say, and the
    # audit records which (a Cancel clicked as the phone was picked up is a leave).
    user = await request.auser()
    try:
        result = await leave_call(user=user, call_id=call_id, uapi=uapi_client())
    except CallboardError as exc:
        return _refusal(request, exc)
    return render(
        request,
        "calls/barge.html#result",
        {"ok": True, "message": result.message, "leg_ended": True},
    )

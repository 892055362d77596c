"""Reading the audit: who may read which rows, the rows a set of filters selects, and the same
rows as the page shows them and as the CSV export writes them.

Who reads what:

* a superuser reads every Organization's rows (and may narrow them to one);
* anyone else holding ``calls.view_bargeinattempt`` (supervisors, staff) reads the rows of the
  Organization of their Supervisor profile, and nothing without one;
* without the right, nothing.

The audit has no queue column: a row's queue is the queue its call went through, as the
watcher recorded it in ``QueueCall`` (one row per call, by its VoipNow id, in the same
Organization). A call that never went through a queue (a direct call to an agent) has no
queue, and neither has a call whose history was deleted after ``CALLBOARD_HISTORY_DAYS``:
those rows show none and the queue filter never selects them.

Times are the Organization's local time (``Organization.time_zone``): the date filters select
from the local midnight starting ``from`` to the local midnight ending ``to``, each row in its
own Organization's zone when a superuser reads several.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery

from calls.exceptions import NotAllowed
from calls.figures import zone
from calls.models import BargeInAttempt, Extension, Organization, QueueCall, Supervisor
from calls.selectors import supervisor_of

AUDIT_PERMISSION = "calls.view_bargeinattempt"


@dataclass(frozen=True, slots=True)
class AuditReader:
    """Whose rows a user may read: one Organization's, or, for a superuser, every one's."""

    organization: Organization | None

    @property
    def everywhere(self) -> bool:
        return self.organization is None

    @property
    def time_zone(self) -> str:
        """The zone the reader's dates are in: their Organization's; UTC across several."""
        return self.organization.time_zone if self.organization else "UTC"


def may_read_audit(user: Any) -> bool:
    """Whether the user holds the right to read the audit (of some Organization)."""
    return bool(getattr(user, "is_authenticated", False) and user.has_perm(AUDIT_PERMISSION))


def audit_reader(user: Any) -> AuditReader:
    """What ``user`` may read of the audit.

    Raises NotAllowed without the right, and for a user holding it who is neither a superuser
    nor the Supervisor of an Organization (staff included: being staff widens nothing here).
    """
    if not may_read_audit(user):
        raise NotAllowed("You are not allowed to read the audit.")
    if user.is_superuser:
        return AuditReader(organization=None)
    supervisor = supervisor_of(user)
    if supervisor is None:
        raise NotAllowed(
            "You supervise no organization, so there is no audit for you to read: "
            "an admin can make you a supervisor."
        )
    return AuditReader(organization=supervisor.organization)


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What to select; empty values select everything. ``date_to`` is inclusive."""

    organization: Organization | None = None
    supervisor: str = ""
    agent: str = ""
    queue: str = ""
    mode: str = ""
    outcome: str = ""
    date_from: date | None = None
    date_to: date | None = None


def attempts_for(reader: AuditReader, filters: AuditFilters) -> QuerySet[BargeInAttempt]:
    """The audit rows ``reader`` may read that ``filters`` select, newest first, each with its
    Organization, ``queue_number``/``queue_label`` (empty: the call went through no queue) and
    ``agent_label`` (the target extension's label, empty when unknown)."""
    queue_call = QueueCall.objects.filter(
        phone_call_id=OuterRef("phone_call_id"), organization_id=OuterRef("organization_id")
    )
    rows = BargeInAttempt.objects.select_related("organization").annotate(
        queue_number=Subquery(queue_call.values("queue__number")[:1]),
        queue_label=Subquery(queue_call.values("queue__label")[:1]),
        agent_label=Subquery(
            Extension.objects.filter(
                number=OuterRef("target_extension"), organization_id=OuterRef("organization_id")
            ).values("label")[:1]
        ),
    )
    if reader.organization is not None:
        rows = rows.filter(organization=reader.organization)
    if filters.organization is not None:
        # For a reader of one Organization, another one selects nothing.
        rows = rows.filter(organization=filters.organization)
    if filters.supervisor:
        rows = rows.filter(username=filters.supervisor)
    if filters.agent:
        rows = rows.filter(target_extension=filters.agent)
    if filters.queue:
        rows = rows.filter(queue_number=filters.queue)
    if filters.mode:
        rows = rows.filter(mode=filters.mode)
    if filters.outcome:
        rows = rows.filter(outcome=filters.outcome)
    if filters.date_from or filters.date_to:
        rows = rows.filter(_between(reader, filters))
    return rows.order_by("-at", "-pk")


def local_midnight(time_zone: str, day: date) -> datetime:
    """The midnight starting ``day`` in ``time_zone``, in UTC. (A zone that skips midnight for
    daylight saving starts the day at the first moment it has.)"""
    return datetime.combine(day, time(0), tzinfo=zone(time_zone)).astimezone(UTC)


def _in_days(time_zone: str, start: date | None, end: date | None) -> Q:
    q = Q()
    if start is not None:
        q &= Q(at__gte=local_midnight(time_zone, start))
    if end is not None:
        q &= Q(at__lt=local_midnight(time_zone, end + timedelta(days=1)))
    return q


def _between(reader: AuditReader, filters: AuditFilters) -> Q:
    """The date range, each row in its own Organization's zone."""
    start, end = filters.date_from, filters.date_to
    organization = reader.organization or filters.organization
    if organization is not None:
        return _in_days(organization.time_zone, start, end)
    # Across Organizations, one condition per time zone in use (a handful), and UTC for rows
    # whose Organization was deleted since.
    zones = Organization.objects.order_by().values_list("time_zone", flat=True).distinct()
    q = Q(organization__isnull=True) & _in_days("UTC", start, end)
    for name in zones:
        q |= Q(organization__time_zone=name) & _in_days(name, start, end)
    return q


@dataclass(frozen=True, slots=True)
class Suggestions:
    """Values the filters' inputs suggest: the reader's own Organization's only."""

    supervisors: list[str]
    agents: list[Extension]
    queues: list[Extension]


def suggestions(reader: AuditReader, organization: Organization | None = None) -> Suggestions:
    """The supervisors, phones and queues of the reader's Organization (of ``organization``
    or of every one for a superuser), from the directory rather than from the audit rows."""
    chosen = reader.organization or organization
    people = Supervisor.objects.all()
    extensions = Extension.objects.all()
    if chosen is not None:
        people = people.filter(organization=chosen)
        extensions = extensions.filter(organization=chosen)
    names = people.order_by("user__username").values_list("user__username", flat=True)
    return Suggestions(
        supervisors=list(names),
        agents=list(extensions.filter(type=Extension.Type.PHONE_TERMINAL).order_by("number")),
        queues=list(extensions.filter(type=Extension.Type.QUEUE).order_by("number")),
    )


def on_call_words(seconds: int | None, joined: bool) -> str:
    """The time on the call for people: ``m:ss`` (``h:mm:ss`` past an hour), ``on the call``
    while joined, ``-`` when the phone never joined."""
    if not joined:
        return "-"
    if seconds is None:
        return "on the call"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit row as people read it, the page and the CSV alike."""

    id: int
    at: datetime  # in the row's Organization's zone
    organization: str
    supervisor: str
    phone: str
    address: str
    call_id: str
    agent: str
    agent_label: str
    queue: str
    queue_label: str
    mode: str
    mode_label: str
    outcome: str
    outcome_label: str
    uapi_code: str
    message: str
    reason: str
    caller_id: str
    joined_at: datetime | None
    left_at: datetime | None
    left_how: str
    on_call_seconds: int | None

    @classmethod
    def of(cls, attempt: BargeInAttempt) -> AuditRow:
        """``attempt`` as read from ``attempts_for`` (with its annotations)."""
        tz = zone(attempt.organization.time_zone if attempt.organization else "UTC")
        joined, left = attempt.joined_at, attempt.left_at
        seconds = max(0, int((left - joined).total_seconds())) if joined and left else None
        return cls(
            id=attempt.pk,
            at=attempt.at.astimezone(tz),
            organization=attempt.organization.name if attempt.organization else "",
            supervisor=attempt.username,
            phone=attempt.send_call_to,
            address=attempt.address or "",
            call_id=attempt.phone_call_id,
            agent=attempt.target_extension,
            agent_label=getattr(attempt, "agent_label", None) or "",
            queue=getattr(attempt, "queue_number", None) or "",
            queue_label=getattr(attempt, "queue_label", None) or "",
            mode=attempt.mode,
            mode_label=attempt.get_mode_display(),
            outcome=attempt.outcome,
            outcome_label=attempt.get_outcome_display(),
            uapi_code=attempt.uapi_code,
            message=attempt.message,
            reason=attempt.reason,
            caller_id=attempt.caller_id,
            joined_at=joined.astimezone(tz) if joined else None,
            left_at=left.astimezone(tz) if left else None,
            left_how=attempt.get_left_how_display() if attempt.left_how else "",
            on_call_seconds=seconds,
        )

    @property
    def on_call(self) -> str:
        return on_call_words(self.on_call_seconds, self.joined_at is not None)

    @property
    def when(self) -> str:
        return self.at.strftime("%Y-%m-%d %H:%M:%S")

    @property
    def zone_name(self) -> str:
        return self.at.strftime("%Z")


def audit_rows(attempts: Iterable[BargeInAttempt]) -> list[AuditRow]:
    return [AuditRow.of(a) for a in attempts]


# ---- the export ----------------------------------------------------------------------------

CSV_COLUMNS = (
    "at",
    "organization",
    "supervisor",
    "from phone",
    "address",
    "call id",
    "agent",
    "agent label",
    "queue",
    "mode",
    "outcome",
    "uapi code",
    "message",
    "reason",
    "caller id",
    "joined",
    "left",
    "how it ended",
    "seconds on the call",
)
# Rows read from the database at a time: a long audit is never held in memory.
CSV_CHUNK = 500


def spreadsheet_safe(text: str) -> str:
    """``text`` as a spreadsheet shows it, never as a formula: a cell starting with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe. Stricter than
    the queue export's callers (which keeps ``+4420…`` as it is): every text of the audit is
    typed by someone, and no column holds a number that starts with a sign."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat(timespec="seconds")


def csv_cells(row: AuditRow) -> list[str]:
    """One row of the export, in ``CSV_COLUMNS`` order, each cell spreadsheet-safe."""
    cells = [
        _iso(row.at),
        row.organization,
        row.supervisor,
        row.phone,
        row.address,
        row.call_id,
        row.agent,
        row.agent_label,
        row.queue,
        row.mode,
        row.outcome,
        row.uapi_code,
        row.message,
        row.reason,
        row.caller_id,
        _iso(row.joined_at),
        _iso(row.left_at),
        row.left_how,
        "" if row.on_call_seconds is None else str(row.on_call_seconds),
    ]
    return [spreadsheet_safe(cell) for cell in cells]


def csv_rows(attempts: QuerySet[BargeInAttempt]) -> Iterator[list[str]]:
    """The header, then every row ``attempts`` selects (no limit), read in chunks; times in
    ISO 8601 with the offset of each row's Organization."""
    yield list(CSV_COLUMNS)
    for attempt in attempts.iterator(chunk_size=CSV_CHUNK):
        yield csv_cells(AuditRow.of(attempt))

"""Who is on each call: the supervisors whose phones VoipNow rang into it, in which mode, and
how long they stayed.

The source is the audit: each attempt VoipNow accepted (``BargeInAttempt``, outcome
``accepted``), or whose answer was lost after it was sent (``uncertain``: the phone may ring),
whose leg has not ended (``left_at`` null), matched with the call's legs. The leg
whose ``source`` is the attempt's phone (``send_call_to``) is that supervisor's, as in the
BargeIn spec's example (view "02": ``source`` the phone that barged in). Until that leg is on
the call the supervisor is ringing; once it is gone they have left.

The watcher (``calls.live``) keeps each Organization's open attempts in memory
(``SupervisorsOnCalls``), so it renders who is on a call without a query per change: it reads
them again when a service says an attempt changed (``ATTEMPTS_CHANGED``, sent to the watcher's
channel when VoipNow accepted an attempt or a supervisor cancelled or left) and every
``DIRECTORY_EVERY`` seconds, which also catches a message that was lost. It records on the
attempt's row when the leg joined and when and how it ended, once: every write is conditional
(``... where left_at is null``), so two watchers, or one that restarted, never write twice.
The barge-in dialog reads the same attempts of one call from the database (``on_call_now``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from calls.models import BargeInAttempt
from calls.uapi.types import PhoneCall
from calls.uapi.wire import DEFAULT_WAIT_FOR_PICKUP, ViewStatus

log = logging.getLogger(__name__)

# The message a service sends to the watcher's channel when an attempt of an Organization was
# accepted, cancelled or left: ``{"type": ATTEMPTS_CHANGED, "org": <pk>, "call_id": <id>}``.
ATTEMPTS_CHANGED = "attempts.changed"
# The outcomes whose phone rings, or may: their legs are followed, shown and can be left. An
# uncertain attempt whose phone never rang shows as ringing until its ring window has passed,
# then is recorded as not answered.
FOLLOWED = (BargeInAttempt.Outcome.ACCEPTED, BargeInAttempt.Outcome.UNCERTAIN)
# Attempts older than this are not followed: a row left open by a crash is not shown for ever.
FOLLOW_FOR = timedelta(hours=12)
# What a supervisor on a call is doing, as a row says it.
DOING: dict[str, str] = {
    BargeInAttempt.Mode.BARGE: "barging in",
    BargeInAttempt.Mode.WHISPER: "whispering",
    BargeInAttempt.Mode.LISTEN: "listening",
}
RINGING = "ringing"
ON_CALL = "on_call"


@dataclass(frozen=True, slots=True)
class OpenAttempt:
    """An accepted attempt whose leg has not ended, as the audit holds it."""

    id: int
    organization_id: int
    call_id: str
    username: str
    name: str  # as people read it: the first name, else the username
    mode: str
    phone: str
    at: datetime
    wait_for_pickup: int
    joined: bool

    def ring_over(self, now: datetime) -> bool:
        """Whether the phone can no longer be ringing: VoipNow gives up after waitForPickup."""
        limit = self.wait_for_pickup + settings.CALLBOARD_RINGING_GUARD_GRACE
        return now - self.at > timedelta(seconds=limit)


@dataclass(frozen=True, slots=True)
class OnCall:
    """A supervisor on a call (``state`` ``ringing`` or ``on_call``), as rows and the dialog
    show them."""

    username: str
    name: str
    mode: str
    state: str

    @property
    def doing(self) -> str:
        """The mode in words: ``listening``, ``whispering``, ``barging in``."""
        return DOING.get(self.mode, self.mode)

    @property
    def words(self) -> str:
        """What a row says they are doing: ``ringing`` until their leg joins."""
        return RINGING if self.state == RINGING else self.doing


class _Leg(Protocol):
    @property
    def source(self) -> tuple[str, ...]: ...

    @property
    def status(self) -> int: ...


# How an attempt stands, from its call's legs.
_JOINED, _RINGING, _PENDING = "joined", "ringing", "pending"


def _observe(attempt: OpenAttempt, legs: Iterable[_Leg], now: datetime, rang: bool) -> str:
    """``joined`` (its leg is on the call), ``ringing`` (its leg rings), ``pending`` (no leg
    yet: VoipNow accepted the attempt a moment ago), or how it ended: ``hung_up`` (it had
    joined and its leg is gone), ``not_answered`` (its leg rang and is gone, or never came).
    ``rang``: its leg was seen before."""
    mine = [leg for leg in legs if attempt.phone in leg.source]
    if any(leg.status == ViewStatus.ON_CALL for leg in mine) or (mine and attempt.joined):
        return _JOINED
    if mine:
        return _RINGING
    if attempt.joined:
        return BargeInAttempt.Left.HUNG_UP
    if rang or attempt.ring_over(now):
        return BargeInAttempt.Left.NOT_ANSWERED
    return _PENDING


def _who(observed: Iterable[tuple[OpenAttempt, str]]) -> tuple[OnCall, ...]:
    """One entry per supervisor, from their latest attempt, in the order of their names."""
    latest: dict[str, tuple[OpenAttempt, str]] = {}
    for attempt, seen in observed:
        if seen not in (_JOINED, _RINGING, _PENDING):
            continue
        known = latest.get(attempt.username)
        if known is None or (known[0].at, known[0].id) < (attempt.at, attempt.id):
            latest[attempt.username] = (attempt, seen)
    return tuple(
        OnCall(
            username=a.username,
            name=a.name,
            mode=a.mode,
            state=ON_CALL if seen == _JOINED else RINGING,
        )
        for a, seen in sorted(latest.values(), key=lambda pair: (pair[0].name, pair[0].username))
    )


def on_call_now(organization_id: int, call_id: str, legs: Sequence[_Leg]) -> tuple[OnCall, ...]:
    """Who is on a live call of the Organization, from its open attempts in the database and
    ``legs``, the call's legs as the watcher last published them."""
    attempts = _read_open([organization_id], call_id=call_id).get(organization_id, {})
    now = timezone.now()
    return _who((a, _observe(a, legs, now, rang=False)) for a in attempts.get(call_id, []))


def _read_open(
    organization_ids: Sequence[int], *, call_id: str | None = None
) -> dict[int, dict[str, list[OpenAttempt]]]:
    """The open attempts of these Organizations (of one call), by Organization and call,
    oldest first."""
    rows = BargeInAttempt.objects.filter(
        outcome__in=FOLLOWED,
        left_at__isnull=True,
        at__gte=timezone.now() - FOLLOW_FOR,
        organization_id__in=organization_ids,
    ).exclude(send_call_to="")
    if call_id is not None:
        rows = rows.filter(phone_call_id=call_id)
    found: dict[int, dict[str, list[OpenAttempt]]] = {}
    fields = (
        "pk",
        "organization_id",
        "phone_call_id",
        "username",
        "user__first_name",
        "mode",
        "send_call_to",
        "at",
        "wait_for_pickup",
        "joined_at",
    )
    for pk, org, call, username, first, mode, phone, at, wait, joined in rows.order_by(
        "at", "pk"
    ).values_list(*fields):
        attempt = OpenAttempt(
            id=pk,
            organization_id=org,
            call_id=call,
            username=username,
            name=first or username,
            mode=mode,
            phone=phone,
            at=at,
            wait_for_pickup=int(wait) if wait.isdigit() else DEFAULT_WAIT_FOR_PICKUP,
            joined=joined is not None,
        )
        found.setdefault(org, {}).setdefault(call, []).append(attempt)
    return found


def _record(
    joins: Sequence[tuple[int, datetime]], ends: Sequence[tuple[int, str]], now: datetime
) -> None:
    """Write what the legs showed, each once: a second watcher, or this one after a restart,
    finds the row already written and changes nothing."""
    for attempt_id, joined_at in joins:
        BargeInAttempt.objects.filter(
            pk=attempt_id, joined_at__isnull=True, left_at__isnull=True
        ).update(joined_at=joined_at)
    for attempt_id, how in ends:
        BargeInAttempt.objects.filter(pk=attempt_id, left_at__isnull=True).update(
            left_at=now, left_how=how
        )


class SupervisorsOnCalls:
    """The watcher's part: each Organization's open attempts, who is on each call as last
    published, and the attempts whose legs it has seen (a leg that rang and went is not
    waited for again)."""

    def __init__(self) -> None:
        self._open: dict[int, dict[str, list[OpenAttempt]]] = {}
        self._shown: dict[int, dict[str, tuple[OnCall, ...]]] = {}
        self._rang: set[int] = set()
        # An Organization's attempts are read again before its next publish when it is marked
        # stale, or when they were read before the last ``stale()`` of every Organization.
        self._stale: set[int] = set()
        self._generation = 0
        self._read_in: dict[int, int] = {}

    def stale(self, org_id: int | None = None) -> None:
        """Read the attempts of ``org_id`` (of every Organization: None) again before its
        next publish."""
        if org_id is None:
            self._generation += 1
        else:
            self._stale.add(org_id)

    def on(self, org_id: int, call_id: str) -> tuple[OnCall, ...]:
        """Who is on the call, as ``follow`` last found."""
        return self._shown.get(org_id, {}).get(call_id, ())

    async def follow(
        self, org_id: int, calls: Mapping[str, PhoneCall], *, complete: bool
    ) -> set[str]:
        """Match the Organization's open attempts with its live ``calls``; record joins and
        ends; answer the ids of the calls whose supervisors changed since the last time.

        ``complete``: ``calls`` are all of the Organization's live calls (it was polled), so
        an attempt whose call is not among them ended with the call. Raises what the
        database raises."""
        if org_id in self._stale or self._read_in.get(org_id) != self._generation:
            await self._reload(org_id)
        attempts = self._open.get(org_id, {})
        shown = self._shown.get(org_id, {})
        if not attempts and not shown:
            return set()
        now = timezone.now()
        joins: list[tuple[int, datetime]] = []
        ends: list[tuple[int, str]] = []
        still: dict[str, list[OpenAttempt]] = {}
        who: dict[str, tuple[OnCall, ...]] = {}
        for call_id, open_ in attempts.items():
            call = calls.get(call_id)
            if call is not None:
                still[call_id], found = self._match(call, open_, now, joins, ends)
                if found:
                    who[call_id] = found
            elif complete:
                ends += [(a.id, BargeInAttempt.Left.CALL_ENDED) for a in open_]
            else:
                still[call_id] = open_
        if joins or ends:
            await sync_to_async(_record)(joins, ends, now)
            for attempt_id, how in ends:
                self._rang.discard(attempt_id)
                log.info("attempt %s: the supervisor's leg ended (%s)", attempt_id, how)
        self._open[org_id] = {c: a for c, a in still.items() if a}
        self._shown[org_id] = who
        return {c for c in who.keys() | shown.keys() if who.get(c, ()) != shown.get(c, ())}

    def _match(
        self,
        call: PhoneCall,
        attempts: list[OpenAttempt],
        now: datetime,
        joins: list[tuple[int, datetime]],
        ends: list[tuple[int, str]],
    ) -> tuple[list[OpenAttempt], tuple[OnCall, ...]]:
        """The call's attempts matched with its legs: those still open, and who is on the
        call. Adds the joins and ends seen to ``joins`` and ``ends``."""
        observed = []
        for attempt in attempts:
            seen = _observe(attempt, call.views, now, rang=attempt.id in self._rang)
            if seen in (BargeInAttempt.Left.HUNG_UP, BargeInAttempt.Left.NOT_ANSWERED):
                ends.append((attempt.id, seen))
                continue
            if seen != _PENDING:
                self._rang.add(attempt.id)
            if seen == _JOINED and not attempt.joined:
                # Our clock, as left_at's: VoipNow's times are to the second, on its clock.
                joins.append((attempt.id, now))
                attempt = replace(attempt, joined=True)
            observed.append((attempt, seen))
        return [a for a, _ in observed], _who(observed)

    async def _reload(self, org_id: int) -> None:
        self._stale.discard(org_id)
        self._read_in[org_id] = self._generation
        found = await sync_to_async(_read_open)([org_id])
        self._open[org_id] = found.get(org_id, {})
        # Attempts that ended meanwhile (cancelled, left) are forgotten.
        self._rang &= {a.id for calls in self._open.values() for x in calls.values() for a in x}

"""Call records: the CDR of every call the emulator ends, for List CDR
(``GET /uapi/cdr/[{ownerId}/]``).

What a record holds is not documented beyond its filters (4PSA's MCP server ``cdr-list.ts``:
source, destination, startDate, endDate, saveStartDate, saveEndDate, disposition 0-5, flow
2/4/8, fields, sortOrder, and ``filterBy`` source, destination, published or answered). Two
clients written against real servers read more: a record is a PhoneCall-like object with
``id`` (the PhoneCall id, the ``CallAPIID`` of its Call Events), ``published`` and
``phoneCallView``, each view with ``source``, ``destination``, ``answered``, ``duration``,
``flow`` and ``disposition``; and ``entry`` is an object keyed by the record ids, not a list
(4PSA's own test code says so, and so does a VoipNow-based provider's client). The emulator
plays that, and adds a summary on the record itself (README, "Call records"):

``id``, ``extension`` (the charged extension: the queue of a queue call), ``ownerId`` and
``ownerName`` (its organization), ``published`` (the start), ``answered`` (when someone
answered; absent otherwise), ``ended``, ``duration`` (start to end, whole seconds),
``billsec`` (answer to end; 0 when unanswered), ``disposition`` (0 answered, 3 no answer),
``flow``, ``source``, ``destination`` (for an answered queue call the agent's extension that
answered, else the queue), ``callerId`` and ``phoneCallView`` (every leg the call had, with
its own ``duration`` and ``disposition``; an agent's phone that rang out is a leg with
disposition 3).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from calls.uapi.wire import Disposition

from .base import EmulatorBase
from .model import Call, View, compact, iso, now
from .world import Account

# Records kept, oldest dropped first: about four days of the demo's traffic.
MAX_RECORDS = 100_000

RECORD_FIELDS = frozenset(
    {
        "id",
        "extension",
        "ownerId",
        "ownerName",
        "published",
        "answered",
        "ended",
        "duration",
        "billsec",
        "disposition",
        "flow",
        "source",
        "destination",
        "callerId",
        "phoneCallView",
    }
)


def _seconds(span: timedelta) -> int:
    return max(0, round(span.total_seconds()))


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One ended call: its JSON (``body``) and what List CDR filters it by."""

    id: str
    organization_id: str
    extensions: frozenset[str]  # every extension the call involved
    published: datetime
    answered: datetime | None
    ended: datetime
    sources: frozenset[str]  # the numbers of every leg's source
    destinations: frozenset[str]  # and of every leg's destination
    disposition: int
    flow: int | None
    body: dict[str, Any]


def new_records() -> deque[CallRecord]:
    return deque(maxlen=MAX_RECORDS)


class CallRecords(EmulatorBase):
    def _record_leg(self, call: Call, view: View, status: str) -> None:
        start = view.ringing or call.published
        call.ended_legs.append(
            compact(
                {
                    "id": view.id,
                    "extension": view.extension,
                    "source": list(view.source),
                    "destination": list(view.destination),
                    "flow": view.flow,
                    "callerId": view.caller_id,
                    "ringing": iso(view.ringing),
                    "answered": iso(view.answered),
                    "duration": _seconds(now() - start),
                    # A leg nobody answered, whether its ring ran out (NOANSWER) or the call
                    # went away first (CANCEL), is NO ANSWER, as a PBX's CDR has it.
                    "disposition": int(
                        Disposition.ANSWERED if view.answered else Disposition.NO_ANSWER
                    ),
                }
            )
        )

    def _record_call(self, call: Call) -> None:
        end = now()
        legs = sorted(call.ended_legs, key=lambda leg: str(leg["id"]))
        first: dict[str, Any] = legs[0] if legs else {}
        answered = call.answered
        disposition = Disposition.ANSWERED if answered else Disposition.NO_ANSWER
        source = first.get("source") or [call.caller_number]
        destination = first.get("destination") or [call.extension]
        body = compact(
            {
                "id": call.id,
                "extension": call.extension,
                "ownerId": call.organization_id,
                "ownerName": call.organization_name,
                "published": iso(call.published),
                "answered": iso(answered),
                "ended": iso(end),
                "duration": _seconds(end - call.published),
                "billsec": _seconds(end - answered) if answered else 0,
                "disposition": int(disposition),
                "flow": first.get("flow"),
                "source": source,
                "destination": destination,
                "callerId": first.get("callerId"),
                "phoneCallView": legs,
            }
        )
        sources = {str(n) for leg in legs for n in leg.get("source", ())} | set(source)
        destinations = {str(n) for leg in legs for n in leg.get("destination", ())}
        destinations |= set(destination)
        extensions = {call.extension} | {str(leg["extension"]) for leg in legs}
        extensions |= {n for n in sources | destinations if n in self.world.extensions}
        self.cdrs.append(
            CallRecord(
                id=call.id,
                organization_id=call.organization_id,
                extensions=frozenset(extensions),
                published=call.published,
                answered=answered,
                ended=end,
                sources=frozenset(sources),
                destinations=frozenset(destinations),
                disposition=int(disposition),
                flow=first.get("flow"),
                body=body,
            )
        )

    def call_records(self, account: Account) -> list[CallRecord]:
        """The records of ended calls ``account`` may see, oldest first: a service
        provider's every record, an organization's its own, a user's those involving its
        extensions."""
        if account.kind == "serviceProvider":
            return list(self.cdrs)
        if account.kind == "organization":
            return [r for r in self.cdrs if r.organization_id in account.organization_ids]
        return [r for r in self.cdrs if not r.extensions.isdisjoint(account.extensions)]


def select_records(
    records: Iterable[CallRecord],
    *,
    start: datetime,
    end: datetime,
    save_start: datetime | None = None,
    save_end: datetime | None = None,
    source: str | None = None,
    destination: str | None = None,
    disposition: int | None = None,
    flow: int | None = None,
    answered_since: datetime | None = None,
) -> list[CallRecord]:
    """The records whose call started between ``start`` and ``end`` (both included, to the
    second), ended (was saved) between ``save_start`` and ``save_end`` when given, and match
    every other filter given."""
    chosen = []
    for record in records:
        published = record.published.replace(microsecond=0)
        if not start <= published <= end:
            continue
        ended = record.ended.replace(microsecond=0)
        if save_start is not None and ended < save_start:
            continue
        if save_end is not None and ended > save_end:
            continue
        if source is not None and source not in record.sources:
            continue
        if destination is not None and destination not in record.destinations:
            continue
        if disposition is not None and record.disposition != disposition:
            continue
        if flow is not None and record.flow != flow:
            continue
        if answered_since is not None and (
            record.answered is None or record.answered.replace(microsecond=0) < answered_since
        ):
            continue
        chosen.append(record)
    return chosen

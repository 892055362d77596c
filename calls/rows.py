"""How a live call is shown: one row, the same for every screen of its Organization.

A row depends only on the call and the Organization's extension labels, never on who looks at
it, so it is rendered once per change and the same HTML goes to every screen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from django.template.loader import render_to_string

from calls.selectors import agent_leg
from calls.store import LiveStatus
from calls.supervising import OnCall
from calls.uapi.types import PhoneCall, PhoneCallView
from calls.uapi.wire import VIEW_STATUS_WORDS, ViewStatus

ROW_TEMPLATE = "calls/live.html#call-row"
GONE_TEMPLATE = "calls/live.html#call-gone"
WALL_ROW_TEMPLATE = "calls/wallboard.html#wall-row"
MASK = "\u2022"  # •
# The number inside a caller ID of the form "Name <number>".
_BRACKETED = re.compile(r"<([^<>]*)>")
STATUS_TEMPLATE = "calls/live.html#live-status"


@dataclass(frozen=True, slots=True)
class Directory:
    """Labels of an Organization's extensions, by number, and its queues' long-wait alert
    thresholds in seconds (queues without one are absent)."""

    labels: dict[str, str]
    long_waits: dict[str, int] = field(default_factory=dict)

    def label(self, number: str) -> str:
        return self.labels.get(number, "")


@dataclass(frozen=True, slots=True)
class ViewRow:
    id: str
    extension: str
    party: str  # who this leg is: the extension, or the phone that joined the call through it
    label: str
    status: int
    status_words: str
    source: str


@dataclass(frozen=True, slots=True)
class CallRow:
    id: str
    queue: str
    queue_label: str
    caller: str
    agent: str
    agent_label: str
    state: str
    published: datetime | None
    answered: datetime | None
    views: tuple[ViewRow, ...]
    # Seconds of waiting after which the browser flags the call (the queue's threshold).
    long_wait: int | None = None
    # The supervisors on the call (calls/supervising.py), the same for every screen.
    supervisors: tuple[OnCall, ...] = ()


def status_words(status: int) -> str:
    try:
        return VIEW_STATUS_WORDS[ViewStatus(status)]
    except ValueError:
        return VIEW_STATUS_WORDS[ViewStatus.UNKNOWN]


def _caller(call: PhoneCall) -> str:
    first = call.views[0] if call.views else None
    if first is None:
        return ""
    if first.caller_id:
        return first.caller_id
    return ", ".join(first.source)


def _party(view: PhoneCallView, directory: Directory) -> str:
    """A leg rung into the call (barge-in, whisper, listen) has the barged extension as its
    ``extension`` and the joining phone as its source: name the phone, it is who is there."""
    return next(
        (s for s in view.source if s != view.extension and s in directory.labels), view.extension
    )


def call_row(
    call: PhoneCall, directory: Directory, supervisors: tuple[OnCall, ...] = ()
) -> CallRow:
    agent = agent_leg(call.extension, call.views)
    if call.answered or (agent is not None and agent.status == ViewStatus.ON_CALL):
        state = "talking"
    elif agent is not None and agent.status == ViewStatus.RINGING:
        state = "ringing"
    else:
        state = "waiting"
    return CallRow(
        id=call.id,
        queue=call.extension,
        queue_label=directory.label(call.extension),
        caller=_caller(call),
        agent=agent.extension if agent else "",
        agent_label=directory.label(agent.extension) if agent else "",
        state=state,
        published=call.published,
        answered=call.answered or (agent.answered if agent else None),
        views=tuple(
            ViewRow(
                id=v.id,
                extension=v.extension,
                party=_party(v, directory),
                label=directory.label(_party(v, directory)),
                status=v.status,
                status_words=status_words(v.status),
                source=", ".join(v.source),
            )
            for v in sorted(call.views, key=lambda v: v.id)
        ),
        long_wait=directory.long_waits.get(call.extension),
        supervisors=supervisors,
    )


def mask_number(number: str) -> str:
    """``number`` with its middle hidden for a screen in an open room: the first 5 and last 4
    characters kept and a dot for each one between (``+442071838750`` → ``+4420••••8750``);
    of a number under 10 characters, a third at each end."""
    keep_head, keep_tail = (5, 4) if len(number) >= 10 else (len(number) // 3,) * 2
    hidden = len(number) - keep_head - keep_tail
    return number[:keep_head] + MASK * hidden + number[len(number) - keep_tail :]


def masked_caller(call: PhoneCall) -> str:
    """The caller's number masked, without the name of a caller ID (a name on a TV in an open
    room says as much as a number)."""
    first = call.views[0] if call.views else None
    if first is None:
        return ""
    bracketed = _BRACKETED.search(first.caller_id or "")
    number = bracketed.group(1) if bracketed else (first.source[0] if first.source else "")
    return mask_number(number.strip())


@dataclass(frozen=True, slots=True)
class WallRow:
    id: str
    queue: str
    queue_label: str
    caller: str  # masked
    agent_label: str
    state: str
    published: datetime | None
    answered: datetime | None


def render_wall_row(call: PhoneCall, directory: Directory) -> str:
    """The call's row for wallboards: the same ``<tr id="call-…">`` with the caller masked and
    nothing else that names them (no legs, no sources)."""
    row = call_row(call, directory)
    wall = WallRow(
        id=row.id,
        queue=row.queue,
        queue_label=row.queue_label,
        caller=masked_caller(call),
        agent_label=row.agent_label or row.agent,
        state=row.state,
        published=row.published,
        answered=row.answered,
    )
    return render_to_string(WALL_ROW_TEMPLATE, {"row": wall})


def render_row(call: PhoneCall, directory: Directory, supervisors: tuple[OnCall, ...] = ()) -> str:
    """The call's ``<tr id="call-…">``, swapped out of band by id, naming the ``supervisors``
    on it."""
    return render_to_string(ROW_TEMPLATE, {"row": call_row(call, directory, supervisors)})


def render_gone(call_id: str) -> str:
    """The fragment that removes a call's row from every screen."""
    return render_to_string(GONE_TEMPLATE, {"call_id": call_id})


def render_status(status: LiveStatus) -> str:
    """The freshness banner (``#live-status``), swapped out of band on every screen."""
    return render_to_string(STATUS_TEMPLATE, {"status": status})

"""Reads: who a user supervises, and a live call as the watcher last saw it."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from calls import store
from calls.exceptions import NoSuchCall, NotAllowed
from calls.models import BargeInAttempt, Extension, Supervisor, Wallboard


@dataclass(frozen=True, slots=True)
class LiveView:
    id: str
    extension: str
    status: int
    source: tuple[str, ...]
    label: str = ""


@dataclass(frozen=True, slots=True)
class LiveCall:
    """The parts of a live call that rules and the barge-in dialog need."""

    id: str
    organization_id: int
    extension: str
    views: tuple[LiveView, ...]

    def view(self, view_id: str) -> LiveView | None:
        return next((v for v in self.views if v.id == view_id), None)

    @property
    def agent_view(self) -> LiveView | None:
        return agent_leg(self.extension, self.views)

    def to_cache(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "org": self.organization_id,
            "extension": self.extension,
            "views": [[v.id, v.extension, v.status, list(v.source), v.label] for v in self.views],
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> LiveCall:
        return cls(
            id=data["id"],
            organization_id=data["org"],
            extension=data["extension"],
            views=tuple(
                LiveView(id=v[0], extension=v[1], status=v[2], source=tuple(v[3]), label=v[4])
                for v in data["views"]
            ),
        )


class _Leg(Protocol):
    @property
    def extension(self) -> str: ...


L = TypeVar("L", bound=_Leg)


def agent_leg(charged_extension: str, views: Iterable[L]) -> L | None:
    """The agent's leg of a queue call: the first view (in id order) that is not the queue's
    own, the queue being the extension the call is charged to."""
    return next((v for v in views if v.extension and v.extension != charged_extension), None)


def live_call(call_id: str) -> LiveCall | None:
    """The live call with this id as the watcher last saw it, or None."""
    data = store.live_call(call_id)
    return LiveCall.from_cache(data) if data else None


# The right each mode needs, in the order the dialog shows the modes: a supervisor holds them
# one by one, through a group or directly.
MODE_RIGHTS: dict[str, str] = {
    BargeInAttempt.Mode.BARGE: "calls.barge_in",
    BargeInAttempt.Mode.WHISPER: "calls.whisper",
    BargeInAttempt.Mode.LISTEN: "calls.listen",
}


def modes_held(user: Any) -> list[str]:
    """The modes whose right the user holds, in the dialog's order."""
    if not getattr(user, "is_authenticated", False):
        return []
    return [mode for mode, right in MODE_RIGHTS.items() if user.has_perm(right)]


def may_barge(user: Any, supervisor: Supervisor | None) -> bool:
    """Whether the user may join calls at all: a supervisor holding the right to at least one
    mode (barge in, whisper or listen)."""
    return supervisor is not None and bool(modes_held(user))


@dataclass(frozen=True, slots=True)
class BargeTarget:
    """A live call and the supervisor who may barge in on it."""

    supervisor: Supervisor
    call: LiveCall


def barge_target(user: Any, supervisor: Supervisor | None, call_id: str) -> BargeTarget:
    """The live call this user may barge in on, with the user's Supervisor profile.

    Raises NotAllowed without the right to any mode or a Supervisor profile, NoSuchCall when
    the call is not live or belongs to another Organization (answered alike, so as not to
    reveal it). Whether the user holds the mode asked for is the service's rule.
    """
    if supervisor is None or not may_barge(user, supervisor):
        raise NotAllowed("You are not allowed to barge in on calls.")
    call = live_call(call_id)
    if call is None or call.organization_id != supervisor.organization_id:
        raise NoSuchCall("This call is no longer live.")
    return BargeTarget(supervisor=supervisor, call=call)


def supervisor_of(user: Any) -> Supervisor | None:
    """The user's Supervisor profile with its Organization, or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Supervisor.objects.select_related("organization").filter(user=user).first()


def phones_of(supervisor: Supervisor) -> list[Extension]:
    """The Phone Terminals of the supervisor's Organization assigned to the supervisor."""
    return list(
        supervisor.phones.filter(
            type=Extension.Type.PHONE_TERMINAL, organization=supervisor.organization_id
        ).order_by("number")
    )


@dataclass(frozen=True, slots=True)
class WallboardQueue:
    """A queue a wallboard shows: its tile until the watcher's panel of the queue (the same
    ``dom_id``) replaces it."""

    number: str
    label: str

    @property
    def dom_id(self) -> str:
        return "queue-" + self.number.replace("*", "-")


def wallboard_queues(board: Wallboard) -> list[WallboardQueue]:
    """The queues a wallboard shows, by number: those chosen for it, or, when none are, every
    queue of its Organization."""
    chosen = board.queues.order_by("number")
    if not chosen.exists():
        chosen = Extension.objects.filter(
            organization_id=board.organization_id, type=Extension.Type.QUEUE
        ).order_by("number")
    return [WallboardQueue(number=q.number, label=q.label) for q in chosen]


@dataclass(frozen=True, slots=True)
class WallboardScreen:
    """What a wallboard's socket needs to know, read once when it connects."""

    id: int
    organization_id: int
    token: str
    queues: frozenset[str]  # the numbers of the queues it shows
    show_calls: bool


def wallboard_screen(token: str) -> WallboardScreen | None:
    """The enabled wallboard with this token; None when there is none (never was, rotated,
    revoked or deleted)."""
    board = Wallboard.objects.filter(token=token, enabled=True).first()
    if board is None:
        return None
    return WallboardScreen(
        id=board.pk,
        organization_id=board.organization_id,
        token=board.token,
        queues=frozenset(q.number for q in wallboard_queues(board)),
        show_calls=board.show_calls,
    )


def working_wallboards(ids: Collection[int]) -> dict[int, str]:
    """The token of each of these wallboards that is still enabled, by id, in one query: a
    wallboard missing from the answer was revoked or deleted."""
    boards = Wallboard.objects.filter(pk__in=ids, enabled=True)
    return dict(boards.values_list("pk", "token"))

"""VoipNow's collections, in every shape a server is known to answer them.

One reader serves every list the client reads (calls, one call, Call Event registrations,
queue agents, presence), because real servers differ (facts.md, section 0):

- 204 No Content: nothing to list;
- ``{"entry": [...], "totalResults": n, "next": "..."}``: the 3.x collection;
- ``{"entry": {"<id>": {...}, ...}}``: entries keyed by their ids (List CDR);
- ``{"totalResults": 0}`` without ``entry``: an empty collection, null fields being omitted;
- ``[{"entry": [...]}]``: the same wrapped in an array, as the v5 pages show it;
- ``[{...}, {...}]``: a bare array of resources (QueueAgents' Update answers one);
- ``{"id": ...}``: a single resource where a collection of one was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import UapiUnavailable

# Keys that make an object a collection envelope rather than a resource.
_ENVELOPE_KEYS = frozenset({"entry", "totalResults", "itemsPerPage", "startIndex", "next", "prev"})


@dataclass(frozen=True, slots=True)
class Collection:
    """The entries of one answer, as raw JSON, with what VoipNow said of the rest."""

    entries: tuple[Any, ...]
    total: int | None = None
    next_url: str | None = None


def _is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and not value.keys().isdisjoint(_ENVELOPE_KEYS)


def _entry_list(entries: Any, what: str) -> list[Any]:
    """The ``entry`` of an envelope as a list: absent (none), a list, one object, or an
    object keyed by the entries' ids (List CDR)."""
    if entries is None:
        return []
    if isinstance(entries, list):
        return entries
    if isinstance(entries, dict):
        if entries and "id" not in entries and all(isinstance(v, dict) for v in entries.values()):
            return list(entries.values())
        return [entries]  # one entry, not wrapped in a list
    raise UapiUnavailable(f"VoipNow answered {what} without an entry list.")


def read_collection(body: Any, what: str) -> Collection:
    """The collection in ``body`` (parsed JSON, None for an empty answer); ``what`` names it
    in errors ("List PhoneCalls").

    Raises UapiUnavailable when the body is none of the known shapes.
    """
    if body is None:
        return Collection(entries=())
    if isinstance(body, list):
        envelopes = [item for item in body if _is_envelope(item)]
        if not envelopes:
            return Collection(entries=tuple(body))
        if len(envelopes) != len(body):
            raise UapiUnavailable(f"VoipNow answered {what} with a mixed array.")
        parts = [read_collection(item, what) for item in envelopes]
        return Collection(
            entries=tuple(e for part in parts for e in part.entries),
            total=parts[0].total if len(parts) == 1 else None,
            next_url=parts[-1].next_url,
        )
    if not isinstance(body, dict):
        raise UapiUnavailable(f"VoipNow answered {what} with an unexpected shape.")
    if not _is_envelope(body):
        return Collection(entries=(body,))
    entries = _entry_list(body.get("entry"), what)
    next_url = body.get("next")
    return Collection(
        entries=tuple(entries),
        total=_count(body.get("totalResults")),
        next_url=str(next_url) if next_url else None,
    )


def _count(value: Any) -> int | None:
    """A count VoipNow sent as a number or a string of digits; None for anything else
    (``isdigit`` alone takes "²", which is no number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None

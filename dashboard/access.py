"""Who may keep a live socket open, after it opened.

A supervisor's socket is checked when it connects, and daphne then keeps it up to a day. What
can take the right away meanwhile: logging out (that session's sockets), being deactivated or
deleted, the Supervisor row deleted or moved to another Organization, the mode rights changed,
the session expired or cut (a password change ends the sessions it does not renew). Signals
tell the user's sockets at once, through a channels group per user; and every socket of a
process is read again every ``CALLBOARD_ACCESS_CHECK_SECONDS`` (dashboard/consumers.py), for
what no signal sees: a right given through a group's rights or a deleted Permission, SQL run
by hand, a session that expired.

Watching follows the rule of ``calls.selectors.supervisor_of``: an active user with a
Supervisor row watches that Organization's calls. The mode rights decide what the page
offers, not what it shows; a change of them closes the socket too, so that the page is
reloaded with what the user may now do.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from calls.models import Supervisor

# Close codes the live page understands (static/callboard.js): the session no longer holds
# (the page goes to the login page), or what the user may see or do changed (the page says
# so and offers a reload). The wallboard's own are 4001 and 4002 (dashboard/consumers.py).
SIGNED_OUT = 4003
ACCESS_CHANGED = 4004

# The rights of the modes (calls/migrations/0006_supervisor_tools.py).
MODE_RIGHTS = ("listen", "whisper", "barge_in")

CHECK = {"type": "access.check"}
# Session engines whose sessions are rows of django_session: read in one query for a round.
_DATABASE_SESSIONS = {
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
}

log = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    """The channels group of a user's live sockets."""
    return f"access.user.{user_id}"


def session_digest(session_key: str) -> str:
    """How a logout names its session in a message: a digest, never the key itself, which
    would otherwise pass through Redis."""
    return hashlib.sha256(session_key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Access:
    """What a socket's session allows now."""

    signed_in: bool
    organization_id: int | None = None
    modes: frozenset[str] = frozenset()

    @property
    def may_watch(self) -> bool:
        return self.signed_in and self.organization_id is not None

    def close_code(self, opened_with: Access) -> int | None:
        """The code to close a socket that opened with ``opened_with``; None while nothing
        that socket relies on changed."""
        if not self.signed_in:
            return SIGNED_OUT
        if self != opened_with:
            return ACCESS_CHANGED
        return None


SIGNED_OUT_ACCESS = Access(signed_in=False)

SocketKey = tuple[str, int]  # (session key, user id)


def read_access(sockets: Collection[SocketKey]) -> dict[SocketKey, Access]:
    """The access of each (session key, user id), in two queries whatever their number (with
    sessions in the database): one for the users, their Supervisor row and mode rights, one
    for the unexpired sessions. A session holds its user as Django's ``get_user`` checks it:
    the same user id, a configured backend, and the hash of the user's password."""
    user_ids = {user_id for _, user_id in sockets}
    users = {row["pk"]: row for row in _users(user_ids)}
    sessions = _sessions({key for key, _ in sockets})
    found = {}
    for key, user_id in sockets:
        row = users.get(user_id)
        data = sessions.get(key)
        if row is None or data is None or not row["is_active"] or not _holds(data, row):
            found[key, user_id] = SIGNED_OUT_ACCESS
            continue
        modes = MODE_RIGHTS if row["is_superuser"] else [m for m in MODE_RIGHTS if row[m]]
        found[key, user_id] = Access(
            signed_in=True, organization_id=row["organization_id"], modes=frozenset(modes)
        )
    return found


def _users(user_ids: Collection[int]) -> Iterable[dict[str, Any]]:
    rights = Permission.objects.filter(content_type__app_label="calls")
    holds = {
        mode: Exists(
            rights.filter(codename=mode).filter(
                Q(user=OuterRef("pk")) | Q(group__user=OuterRef("pk"))
            )
        )
        for mode in MODE_RIGHTS
    }
    organization = Supervisor.objects.filter(user=OuterRef("pk")).values("organization_id")
    rows: Iterable[dict[str, Any]] = (
        get_user_model()
        .objects.filter(pk__in=user_ids)
        .annotate(organization_id=Subquery(organization[:1]), **holds)
        .values("pk", "password", "is_active", "is_superuser", "organization_id", *MODE_RIGHTS)
    )
    return rows


def _sessions(keys: Collection[str]) -> dict[str, dict[str, Any]]:
    """The decoded data of the sessions that still exist and have not expired, by key."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if settings.SESSION_ENGINE not in _DATABASE_SESSIONS:
        # Cache or file sessions: one look-up each (a deployment with sessions in the
        # database, the default, reads them all at once below).
        loaded = {key: store(key).load() for key in keys}
        return {key: data for key, data in loaded.items() if data}
    rows = Session.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
    decoded = {key: store().decode(data) for key, data in rows.values_list("pk", "session_data")}
    return {key: data for key, data in decoded.items() if data}


def _holds(data: dict[str, Any], row: dict[str, Any]) -> bool:
    if data.get(SESSION_KEY) != str(row["pk"]):
        return False
    if data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return False
    stored = data.get(HASH_SESSION_KEY)
    if not stored:
        return False
    user = get_user_model()(pk=row["pk"], password=row["password"])
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return any(constant_time_compare(stored, h) for h in hashes)


# ---- telling the sockets ----------------------------------------------------------------


def tell(user_ids: Iterable[int], message: dict[str, Any]) -> None:
    """Once the transaction commits, send ``message`` to each user's live sockets. Never
    raises: a socket that misses it is read again within CALLBOARD_ACCESS_CHECK_SECONDS."""
    groups = sorted({user_group(user_id) for user_id in user_ids})
    if groups:
        transaction.on_commit(lambda: _send(groups, message))


# Sends started from code that runs in an event loop, kept until done (asyncio keeps only a
# weak reference to a task).
_sending: set[asyncio.Task[None]] = set()


def _send(groups: list[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all() -> None:
        try:
            for group in groups:
                await layer.group_send(group, dict(message))
        except Exception:  # the layer is down or full: the periodic check still ends them
            log.warning("could not tell live sockets that access changed", exc_info=True)

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # the usual case: a view, the admin or a command, in a thread
        async_to_sync(send_all)()
        return
    task = loop.create_task(send_all())
    _sending.add(task)
    task.add_done_callback(_sending.discard)


def _logged_out(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and key:
        tell([user.pk], {"type": "access.signed_out", "session": session_digest(key)})


def _user_saved(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is not None and set(update_fields) == {"last_login"}:
        return  # every login saves this; it changes nothing a socket relies on
    tell([instance.pk], CHECK)


def _user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    tell([instance.pk], CHECK)


def _supervisor_changed(sender: Any, instance: Supervisor, **kwargs: Any) -> None:
    tell([instance.user_id], CHECK)


def _user_rights_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """A user's groups or own rights changed, from either side of the relation."""
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    # From the user's side the user is the instance; from a group's or a right's side the
    # users are pk_set (None after a clear from that side: the periodic check sees it).
    tell((pk_set or []) if reverse else [instance.pk], CHECK)


def _group_rights_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """A group's rights changed: tell its members."""
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    groups = (pk_set or []) if reverse else [instance.pk]
    tell(_members(groups), CHECK)


def _group_deleted(sender: Any, instance: Group, **kwargs: Any) -> None:
    # Before the delete: afterwards the group has no members to name.
    tell(_members([instance.pk]), CHECK)


def _members(group_ids: Iterable[int]) -> list[int]:
    users = get_user_model().objects.filter(groups__in=list(group_ids)).distinct()
    return list(users.values_list("pk", flat=True))


def connect_signals() -> None:
    """Tell live sockets about every change of access that passes through the ORM."""
    user_model = get_user_model()
    uid = "callboard-access"
    user_logged_out.connect(_logged_out, dispatch_uid=uid)
    post_save.connect(_user_saved, sender=user_model, dispatch_uid=uid)
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid=uid)
    post_save.connect(_supervisor_changed, sender=Supervisor, dispatch_uid=uid)
    post_delete.connect(_supervisor_changed, sender=Supervisor, dispatch_uid=uid)
    for through in (user_model.groups.through, user_model.user_permissions.through):
        m2m_changed.connect(_user_rights_changed, sender=through, dispatch_uid=uid)
    m2m_changed.connect(_group_rights_changed, sender=Group.permissions.through, dispatch_uid=uid)
    pre_delete.connect(_group_deleted, sender=Group, dispatch_uid=uid)

"""Access ends when it is taken away: an open socket stops getting data, and is closed with a
code the page understands, once its session or its user's right to watch ends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, Permission, User
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.utils import timezone

from calls import live
from calls.models import Organization, Supervisor, Wallboard
from dashboard.access import ACCESS_CHANGED, SIGNED_OUT
from dashboard.asgi import application
from tests.dashboard.test_consumers import ORIGIN, drain, socket_for

pytestmark = pytest.mark.django_db(transaction=True)

REVOKED = 4001
# What every screen gets: the heartbeat, data like any other.
BEAT = '<div id="live-status" hx-swap-oob="true">beat</div>'


async def beat() -> None:
    await get_channel_layer().group_send(
        live.STATUS_GROUP, {"type": "calls.status", "html": BEAT, "versions": {}}
    )


async def watching(user: User | None = None, client: Client | None = None) -> WebsocketCommunicator:
    """A live socket of ``user`` (a new session), or of ``client``'s session, past its
    snapshot."""
    if client is not None:
        cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
        comm = WebsocketCommunicator(
            application, "/ws/calls/", headers=[ORIGIN, (b"cookie", cookie)]
        )
    else:
        comm = await socket_for(user)
    connected, _ = await comm.connect()
    assert connected
    assert await drain(comm), "no snapshot"
    return comm


async def signed_in(user: User) -> Client:
    def login() -> Client:
        client = Client()
        client.force_login(user)
        return client

    return await sync_to_async(login)()


async def assert_ends_before_any_data(
    comm: WebsocketCommunicator, code: int, within: float = 1.0
) -> None:
    """Data published right after the change never reaches the socket: it is closed with
    ``code`` first, and nothing follows."""
    await beat()
    await assert_ends(comm, code, within)


async def assert_ends(comm: WebsocketCommunicator, code: int, within: float) -> None:
    """The socket is closed with ``code`` within ``within`` seconds, and nothing published
    after that reaches it."""
    assert await comm.receive_output(timeout=within) == {"type": "websocket.close", "code": code}
    await beat()
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()


async def assert_still_live(comm: WebsocketCommunicator) -> None:
    """The socket is open and gets the data published (every beat so far, this one too)."""
    await beat()
    got = await drain(comm)
    assert got
    assert set(got) == {BEAT}
    await comm.disconnect()


def change(fn: Callable[[], object]) -> Any:
    return sync_to_async(fn)()


@pytest.fixture
def quick_rounds(settings: Any) -> float:
    """Screens read again every 0.2 s, for the changes no signal sees."""
    settings.CALLBOARD_ACCESS_CHECK_SECONDS = 0.2
    return 0.2


# ---- told at once (signals); the rounds are 5 s apart here, the close comes within 1 s ----


async def test_logging_out_ends_that_sessions_sockets_and_no_other(alice: User) -> None:
    session, other = await signed_in(alice), await signed_in(alice)
    comm, other_comm = await watching(client=session), await watching(client=other)

    response = await change(lambda: session.post("/accounts/logout/"))
    assert response.status_code == 302

    await assert_ends_before_any_data(comm, SIGNED_OUT)
    await assert_still_live(other_comm)


async def test_a_deactivated_user_is_signed_out(alice: User, bob: User) -> None:
    comm, bobs = await watching(alice), await watching(bob)

    def deactivate() -> None:
        alice.is_active = False
        alice.save()

    await change(deactivate)

    await assert_ends_before_any_data(comm, SIGNED_OUT)
    await assert_still_live(bobs)


async def test_a_deleted_user_is_signed_out(alice: User) -> None:
    comm = await watching(alice)

    await change(alice.delete)

    await assert_ends_before_any_data(comm, SIGNED_OUT)


async def test_a_new_password_signs_out_the_sessions_it_did_not_renew(alice: User) -> None:
    comm = await watching(alice)

    def new_password() -> None:
        alice.set_password("another shift, another password")
        alice.save()

    await change(new_password)

    await assert_ends_before_any_data(comm, SIGNED_OUT)


async def test_a_deleted_supervisor_row_closes_with_access_changed(alice: User) -> None:
    comm = await watching(alice)

    await change(lambda: Supervisor.objects.filter(user=alice).delete())

    await assert_ends_before_any_data(comm, ACCESS_CHANGED)


async def test_a_supervisor_moved_to_another_organization_stops_seeing_the_first(
    alice: User,
) -> None:
    comm = await watching(alice)

    def move() -> None:
        supervisor = Supervisor.objects.get(user=alice)
        supervisor.organization = Organization.objects.get(name="Globex")
        supervisor.save()

    await change(move)

    await assert_ends_before_any_data(comm, ACCESS_CHANGED)
    # Reconnected, the socket is the new Organization's.
    again = await socket_for(alice)
    assert (await again.connect())[0]
    snapshot = "".join(await drain(again))
    assert '<tbody id="calls-body"' in snapshot
    await again.disconnect()


async def test_leaving_the_group_that_gave_every_mode_right_closes_with_access_changed(
    alice: User,
) -> None:
    comm = await watching(alice)

    await change(alice.groups.clear)

    await assert_ends_before_any_data(comm, ACCESS_CHANGED)
    # Watching needs a Supervisor row, not a mode right: the reloaded page watches again.
    again = await socket_for(alice)
    assert (await again.connect())[0]
    assert await drain(again)
    await again.disconnect()


async def test_a_right_taken_from_the_users_group_closes_its_members_sockets(
    alice: User, bob: User
) -> None:
    comm, bobs = await watching(alice), await watching(bob)

    def take_listen() -> None:
        group = Group.objects.get(user=alice)
        group.permissions.remove(Permission.objects.get(codename="listen"))

    await change(take_listen)

    await assert_ends_before_any_data(comm, ACCESS_CHANGED)
    await assert_ends_before_any_data(bobs, ACCESS_CHANGED)


async def test_a_right_given_to_the_user_directly_closes_with_access_changed(
    alice: User,
) -> None:
    comm = await watching(alice)
    await change(alice.groups.clear)
    await assert_ends_before_any_data(comm, ACCESS_CHANGED)
    comm = await watching(alice)

    await change(lambda: alice.user_permissions.add(Permission.objects.get(codename="listen")))

    await assert_ends_before_any_data(comm, ACCESS_CHANGED)


async def test_a_change_that_takes_nothing_away_keeps_the_socket(alice: User) -> None:
    comm = await watching(alice)

    def rename() -> None:
        alice.first_name = "Alice"
        alice.save()

    await change(rename)

    await assert_still_live(comm)


# ---- what no signal sees: the round every CALLBOARD_ACCESS_CHECK_SECONDS ------------------
# Until the round, the socket may still get what is published: these assert the close within
# a few rounds, and that nothing follows it.


async def test_a_user_deactivated_by_sql_is_signed_out_within_a_round(
    alice: User, quick_rounds: float
) -> None:
    comm = await watching(alice)

    await User.objects.filter(pk=alice.pk).aupdate(is_active=False)

    await assert_ends(comm, SIGNED_OUT, within=quick_rounds * 5)


async def test_an_expired_session_is_signed_out_within_a_round(
    alice: User, quick_rounds: float
) -> None:
    comm = await watching(alice)

    await Session.objects.aupdate(expire_date=timezone.now() - timedelta(seconds=1))

    await assert_ends(comm, SIGNED_OUT, within=quick_rounds * 5)


async def test_a_right_removed_from_a_group_by_sql_closes_within_a_round(
    alice: User, quick_rounds: float
) -> None:
    comm = await watching(alice)

    def delete_rows() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {Group.permissions.through._meta.db_table}")

    await change(delete_rows)

    await assert_ends(comm, ACCESS_CHANGED, within=quick_rounds * 5)


async def test_a_supervisor_row_deleted_by_sql_closes_within_a_round(
    alice: User, quick_rounds: float
) -> None:
    comm = await watching(alice)

    def delete_row() -> None:
        supervisor = Supervisor.objects.get(user=alice).pk
        with connection.cursor() as cursor:
            phones = Supervisor.phones.through._meta.db_table
            cursor.execute(f"DELETE FROM {phones} WHERE supervisor_id = %s", [supervisor])
            cursor.execute(f"DELETE FROM {Supervisor._meta.db_table} WHERE id = %s", [supervisor])

    await change(delete_row)

    await assert_ends(comm, ACCESS_CHANGED, within=quick_rounds * 5)


async def test_rounds_that_find_nothing_changed_keep_the_sockets(
    alice: User, bob: User, quick_rounds: float
) -> None:
    comms = [await watching(alice), await watching(alice), await watching(bob)]

    assert await comms[0].receive_nothing(timeout=quick_rounds * 4)

    for comm in comms:
        await assert_still_live(comm)


@pytest.mark.parametrize(
    "revoke",
    [
        lambda b: Wallboard.objects.filter(pk=b.pk).update(enabled=False),
        lambda b: Wallboard.objects.filter(pk=b.pk).update(token="rotated-by-hand"),
        lambda b: Wallboard.objects.filter(pk=b.pk).delete(),
    ],
    ids=["disabled", "rotated", "deleted"],
)
async def test_a_wallboard_revoked_outside_the_admin_closes_within_a_round(
    world: Any, quick_rounds: float, revoke: Callable[[Wallboard], object]
) -> None:
    board = await Wallboard.objects.filter(organization__name="Acme").afirst()
    assert board is not None
    comm = await socket_for(None, f"/ws/wallboard/{board.token}/")
    assert (await comm.connect())[0]
    assert await drain(comm)

    await change(lambda: revoke(board))

    await assert_ends(comm, REVOKED, within=quick_rounds * 5)

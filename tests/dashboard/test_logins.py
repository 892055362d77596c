"""Login throttling: failures counted per username and per address lock logins for a while,
on the site's login and the admin's, audited, with a page that says so."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import User
from django.test import AsyncClient, Client
from django.utils import timezone

from tests.calls.test_admin_organizations import grant_admin_rights

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
WRONG = "not-the-password-4711"


def attempt(
    username: str, password: str, address: str = "10.0.0.1", path: str = LOGIN
) -> tuple[Client, Any]:
    client = Client(REMOTE_ADDR=address)
    response = client.post(path, {"username": username, "password": password})
    return client, response


def fail(times: int, username: str = "alice", address: str = "10.0.0.1", path: str = LOGIN) -> Any:
    response = None
    for _ in range(times):
        _, response = attempt(username, WRONG, address, path)
    return response


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_five_failures_lock_the_username_and_the_right_password_is_then_refused(
    world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fourth = fail(4)
    assert fourth.status_code == 200  # the form again: not locked yet

    fifth = fail(1)
    client, right = attempt("alice", "demo")

    for response in (fifth, right):
        assert response.status_code == 429
        page = response.content.decode()
        assert "Too many failed logins" in page
        assert "locked for 15 minutes" in page
        assert "Traceback" not in page
    assert not logged_in(client)


def test_the_lockout_is_recorded_and_logged_without_the_password(
    world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fail(5)
    attempt("alice", "demo")

    record = AccessAttempt.objects.get(username="alice")
    # Five failures; the right password tried while locked is refused, not counted.
    assert record.failures_since_start == 5
    assert record.ip_address == "10.0.0.1"
    assert WRONG not in record.post_data
    assert AccessFailureLog.objects.filter(username="alice", locked_out=True).exists()
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "dashboard.logins" and r.levelno == logging.WARNING
    ]
    assert warnings
    assert "'alice' from 10.0.0.1 is locked out" in warnings[0]
    for r in caplog.records:
        assert WRONG not in r.getMessage()
        assert "demo" not in str(r.args)


def test_another_user_from_another_address_is_not_locked(world: Any) -> None:
    fail(5, "alice", "10.0.0.1")

    client, response = attempt("bob", "demo", "10.0.0.2")

    assert response.status_code == 302
    assert logged_in(client)


def test_the_username_is_locked_from_every_address_and_the_address_for_every_username(
    world: Any,
) -> None:
    fail(5, "alice", "10.0.0.1")

    _, same_user_elsewhere = attempt("alice", "demo", "10.0.0.9")
    _, other_user_same_address = attempt("bob", "demo", "10.0.0.1")

    assert same_user_elsewhere.status_code == 429
    assert other_user_same_address.status_code == 429


def test_failures_spread_over_usernames_lock_the_address(world: Any) -> None:
    for name in ["ann", "ben", "cat", "dan", "eve"]:
        fail(1, name, "10.0.0.7")

    _, response = attempt("bob", "demo", "10.0.0.7")

    assert response.status_code == 429


def test_a_success_clears_the_users_own_failures(world: Any) -> None:
    fail(4)
    client, response = attempt("alice", "demo")
    assert response.status_code == 302

    after = fail(4)
    client, again = attempt("alice", "demo")

    assert after.status_code == 200
    assert again.status_code == 302
    assert logged_in(client)
    assert AccessLog.objects.filter(username="alice").count() == 2


def test_logging_in_as_oneself_does_not_clear_the_failures_on_another_name(world: Any) -> None:
    # bob guesses at alice's password from his address, then logs in as himself there.
    fail(4, "alice", "10.0.0.3")
    _, own = attempt("bob", "demo", "10.0.0.3")
    assert own.status_code == 302

    fifth = fail(1, "alice", "10.0.0.4")

    assert fifth.status_code == 429


def test_the_lock_lifts_after_the_lockout_minutes_however_often_it_is_tried(world: Any) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail(5)
    # Colleagues behind the same address keep trying while it is locked: were their tries
    # counted, they would lock it again by themselves.
    with time_machine.travel(start + timedelta(minutes=14), tick=False):
        for _ in range(5):
            _, meanwhile = attempt("bob", "demo")
            assert meanwhile.status_code == 429
    with time_machine.travel(start + timedelta(minutes=15, seconds=1), tick=False):
        client, response = attempt("alice", "demo")
    assert response.status_code == 302
    assert logged_in(client)


def test_the_admin_login_is_throttled_too(world: Any) -> None:
    fail(5, "admin", "10.0.0.5", ADMIN_LOGIN)

    client, response = attempt("admin", "demo", "10.0.0.5", ADMIN_LOGIN)

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert not logged_in(client)


@pytest.mark.django_db(transaction=True)
async def test_the_lockout_page_is_served_on_the_async_stack_too(world: Any) -> None:
    # daphne runs Django's middleware asynchronously: the lockout takes another path there.
    client = AsyncClient(REMOTE_ADDR="10.0.0.6")
    for _ in range(5):
        await client.post(LOGIN, {"username": "bob", "password": WRONG})

    response = await client.post(LOGIN, {"username": "bob", "password": "demo"})

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()


def test_login_records_are_read_only_and_for_superusers_alone(world: Any) -> None:
    superuser, org_admin = Client(), Client()
    superuser.force_login(User.objects.get(username="admin"))
    alice = User.objects.get(username="alice")
    grant_admin_rights(alice)
    org_admin.force_login(alice)
    fail(5)  # after her login, which clears her failures
    record = AccessAttempt.objects.get(username="alice")

    listing = superuser.get("/admin/axes/accessattempt/")
    change = superuser.post(f"/admin/axes/accessattempt/{record.pk}/change/", {"username": "x"})

    assert listing.status_code == 200
    assert "10.0.0.1" in listing.content.decode()
    assert superuser.get("/admin/axes/accessfailurelog/").status_code == 200
    assert superuser.get("/admin/axes/accesslog/").status_code == 200
    assert change.status_code == 403
    assert superuser.get("/admin/axes/accessattempt/add/").status_code == 403
    AccessAttempt.objects.get(pk=record.pk, username="alice")
    for path in ["/admin/axes/accessattempt/", "/admin/axes/accessfailurelog/"]:
        assert org_admin.get(path).status_code == 403

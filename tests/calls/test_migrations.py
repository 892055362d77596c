"""The models and their migrations agree: a model change always ships with its migration; the
data migrations keep what people were allowed to do."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps.registry import Apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@pytest.mark.django_db
def test_no_model_change_is_missing_a_migration() -> None:
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit as exc:
        pytest.fail(f"models changed without a migration:\n{out.getvalue()}")
        raise AssertionError from exc
    assert "No changes detected" in out.getvalue()


# ---- 0006: one right per mode -----------------------------------------------------------------

BEFORE = ("calls", "0005_caller_id_grammar")
AFTER = ("calls", "0006_supervisor_tools")


def migrate_to(target: tuple[str, str]) -> Apps:
    """Migrate the test database to ``target``; the models as they were there."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


def rights_of(apps: Apps, *, group: str = "", user: str = "") -> set[str]:
    """The calls rights a group or a user holds directly, by codename."""
    if group:
        holder = apps.get_model("auth", "Group").objects.get(name=group)
        perms = holder.permissions
    else:
        holder = apps.get_model("auth", "User").objects.get(username=user)
        perms = holder.user_permissions
    return set(perms.filter(content_type__app_label="calls").values_list("codename", flat=True))


def calls_right(apps: Apps, codename: str) -> Any:
    return apps.get_model("auth", "Permission").objects.get(
        content_type__app_label="calls", codename=codename
    )


@pytest.fixture
def back_to_latest() -> Iterator[None]:
    """Whatever the test leaves, the database ends at the latest migrations again."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_whoever_held_barge_in_keeps_listening_and_whispering(back_to_latest: None) -> None:
    old = migrate_to(BEFORE)
    barge = calls_right(old, "barge_in")
    old.get_model("auth", "Group").objects.create(name="floor leads").permissions.add(barge)
    old.get_model("auth", "Group").objects.create(name="agents")
    users = old.get_model("auth", "User").objects
    users.create(username="carol").user_permissions.add(barge)
    users.create(username="dave")
    # Only the old right existed: the mode rights are the migration's.
    assert not old.get_model("auth", "Permission").objects.filter(
        content_type__app_label="calls", codename__in=["listen", "whisper"]
    )

    new = migrate_to(AFTER)

    assert rights_of(new, group="floor leads") == {"listen", "whisper", "barge_in"}
    assert rights_of(new, user="carol") == {"listen", "whisper", "barge_in"}
    assert rights_of(new, group="agents") == set()
    assert rights_of(new, user="dave") == set()
    assert calls_right(new, "barge_in").name == "Can barge in on live calls"
    assert calls_right(new, "listen").name == "Can listen to live calls"


@pytest.mark.django_db(transaction=True)
def test_going_back_whoever_held_any_mode_holds_the_one_right(back_to_latest: None) -> None:
    new = migrate_to(AFTER)
    groups = new.get_model("auth", "Group").objects
    groups.create(name="listeners").permissions.add(calls_right(new, "listen"))
    groups.create(name="agents")
    users = new.get_model("auth", "User").objects
    users.create(username="erin").user_permissions.add(calls_right(new, "whisper"))
    users.create(username="dave")

    old = migrate_to(BEFORE)

    assert rights_of(old, group="listeners") == {"barge_in"}
    assert rights_of(old, user="erin") == {"barge_in"}
    assert rights_of(old, group="agents") == set()
    assert rights_of(old, user="dave") == set()
    assert calls_right(old, "barge_in").name == "Can barge in, whisper and listen on live calls"
    assert not old.get_model("auth", "Permission").objects.filter(
        content_type__app_label="calls", codename__in=["listen", "whisper"]
    )

"""`manage.py demo` resets the demo accounts' passwords: it runs only on a database it created."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection

from dashboard.management.commands.demo import DEMO_DATABASE_MARK

ROOT = Path(__file__).resolve().parents[2]


def manage(var_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CALLBOARD_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "CALLBOARD_VAR_DIR": str(var_dir), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_the_demo_refuses_a_database_it_did_not_create(world: object) -> None:
    admin = User.objects.get(username="admin")
    admin.set_password("the production one")
    admin.save()
    with connection.cursor() as cursor:  # migrated by the tests, not marked by the demo
        assert cursor.execute("PRAGMA application_id").fetchone()[0] == 0

    with pytest.raises(CommandError, match="was not created by the demo"):
        call_command("demo", "--no-emulator")

    admin.refresh_from_db()
    assert admin.check_password("the production one")


def test_a_database_migrated_by_hand_is_refused_and_its_admin_kept(tmp_path: Path) -> None:
    assert manage(tmp_path, "migrate", "-v0").returncode == 0
    make_admin = (
        "from django.contrib.auth.models import User; "
        "User.objects.create_superuser('admin', password='the production one')"
    )
    assert manage(tmp_path, "shell", "-v0", "-c", make_admin).returncode == 0

    demo = manage(tmp_path, "demo", "--no-emulator")

    assert demo.returncode != 0
    assert "was not created by the demo" in demo.stderr
    check = "from django.contrib.auth.models import User; " + (
        "print(User.objects.get(username='admin').check_password('the production one'))"
    )
    assert manage(tmp_path, "shell", "-v0", "-c", check).stdout.strip() == "True"


def test_postgresql_is_refused_before_connecting(tmp_path: Path) -> None:
    demo = manage(tmp_path, "demo", DATABASE_URL="postgres://nobody:x@127.0.0.1:9/production")

    assert demo.returncode != 0
    assert "Unset DATABASE_URL" in demo.stderr
    assert "postgresql database" in demo.stderr


def test_a_new_database_is_marked_as_the_demos_and_accepted_again(tmp_path: Path) -> None:
    claim = (
        "from dashboard.management.commands.demo import claim_demo_database; "
        "claim_demo_database(); claim_demo_database(); print('claimed')"
    )

    first = manage(tmp_path, "shell", "-v0", "-c", claim)
    migrated = manage(tmp_path, "migrate", "-v0")  # what the demo does next
    again = manage(tmp_path, "shell", "-v0", "-c", claim)

    assert first.stdout.strip() == "claimed", first.stderr
    assert migrated.returncode == 0
    assert again.stdout.strip() == "claimed", again.stderr
    with sqlite3.connect(tmp_path / "callboard.sqlite3") as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == DEMO_DATABASE_MARK

"""The demo world on Callboard's side: the scenario's organizations and extensions, and the demo
accounts alice (Acme), bob (Globex) and admin, each with password ``demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction

from calls.models import Extension, Organization, Supervisor, Wallboard

SCENARIO = Path(__file__).resolve().parent / "uapi" / "emulator" / "scenarios" / "demo.json"
PASSWORD = "demo"
SUPERVISORS_GROUP = "Supervisors"
# username -> (organization's VoipNow id, phones the supervisor may barge in from)
DEMO_SUPERVISORS = {
    "alice": ("1", ["0001*024", "0001*025"]),
    "bob": ("2", ["0002*024"]),
}


def load_scenario(path: Path = SCENARIO) -> dict[str, Any]:
    scenario: dict[str, Any] = json.loads(path.read_text())
    return scenario


@transaction.atomic
def seed(scenario: dict[str, Any] | None = None) -> dict[str, str]:
    """Create or update the demo data; idempotent. Returns each organization's wallboard URL."""
    scenario = scenario or load_scenario()
    for org_data in scenario["organizations"]:
        org, _ = Organization.objects.update_or_create(
            voipnow_id=org_data["id"],
            defaults={"name": org_data["name"], "extension_prefix": org_data["prefix"]},
        )
        for user in org_data["users"]:
            for ext in user["extensions"]:
                Extension.objects.update_or_create(
                    number=ext["number"],
                    defaults={
                        "organization": org,
                        "type": ext["type"],
                        "label": ext.get("label", ""),
                        "caller_id": ext.get("callerId", ""),
                    },
                )
    group, _ = Group.objects.get_or_create(name=SUPERVISORS_GROUP)
    # Every mode, and reading their own organization's audit.
    group.permissions.add(
        *Permission.objects.filter(
            codename__in=["listen", "whisper", "barge_in", "view_bargeinattempt"],
            content_type__app_label="calls",
        )
    )

    admin, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
    admin.is_staff = admin.is_superuser = True
    admin.set_password(PASSWORD)
    admin.save()

    boards: dict[str, str] = {}
    for username, (voipnow_id, phones) in DEMO_SUPERVISORS.items():
        org = Organization.objects.get(voipnow_id=voipnow_id)
        user, _ = User.objects.get_or_create(username=username)
        user.set_password(PASSWORD)
        user.save()
        user.groups.add(group)
        supervisor, _ = Supervisor.objects.update_or_create(
            user=user, defaults={"organization": org}
        )
        supervisor.phones.set(Extension.objects.filter(number__in=phones))
        board, _ = Wallboard.objects.get_or_create(organization=org, name=f"{org.name} floor")
        boards[org.name] = f"/wallboard/{board.token}/"
    return boards

"""Organization admins: alice, made staff with every admin permission, administers Acme and
nothing of Globex. Each admin is tried as an attacker would: its list, an object's page by
URL, a change and a delete posted by hand, an add that names Globex, the choices its forms
and the autocomplete offer."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import models
from django.forms.models import model_to_dict
from django.test import Client
from django.utils import timezone

from calls.models import (
    BargeInAttempt,
    EventRegistration,
    Extension,
    Organization,
    QueueCall,
    Supervisor,
    Wallboard,
)

pytestmark = pytest.mark.django_db


def grant_admin_rights(user: User) -> None:
    """Staff, and every permission on Callboard's models and on user accounts."""
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="calls"),
        *Permission.objects.filter(content_type__app_label="auth", content_type__model="user"),
    )


@pytest.fixture
def records(world: Any) -> dict[str, dict[str, models.Model]]:
    """One object of each admin's model in each organization."""
    out: dict[str, dict[str, models.Model]] = {}
    for name, prefix in (("Acme", "0001"), ("Globex", "0002")):
        org = Organization.objects.get(name=name)
        queue = Extension.objects.get(number=f"{prefix}*100")
        user = User.objects.create_user(f"agent-of-{name.lower()}", password="x")
        Supervisor.objects.create(user=user, organization=org)
        out[name] = {
            "organization": org,
            "extension": Extension.objects.get(number=f"{prefix}*024"),
            "supervisor": Supervisor.objects.get(
                organization=org, user__username__in=["alice", "bob"]
            ),
            "wallboard": Wallboard.objects.get(organization=org),
            "eventregistration": EventRegistration.objects.create(
                extension=queue, type=0, state="registered", checked_at=timezone.now()
            ),
            "queuecall": QueueCall.objects.create(
                organization=org, queue=queue, phone_call_id=f"call{prefix}", arrived=timezone.now()
            ),
            "bargeinattempt": BargeInAttempt.objects.create(
                username="someone", organization=org, phone_call_id=f"audit{prefix}"
            ),
            "user": user,
        }
    return out


@pytest.fixture
def acme_admin(records: Any) -> Client:
    alice = User.objects.get(username="alice")
    grant_admin_rights(alice)
    client = Client()
    client.force_login(alice)
    return client


def url(obj: models.Model, view: str = "change") -> str:
    meta = obj._meta
    return f"/admin/{meta.app_label}/{meta.model_name}/{obj.pk}/{view}/"


def changelist(obj: models.Model) -> str:
    return f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/"


def snapshot(obj: models.Model) -> dict[str, Any]:
    fresh = type(obj)._default_manager.get(pk=obj.pk)
    return model_to_dict(fresh)


def options(html: str, name: str) -> set[str]:
    """The values a form's <select name=...> offers (empty choice left out)."""
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None, f"no <select name={name}>"
    return {v for v in re.findall(r'<option value="([^"]*)"', select.group(1)) if v}


MODELS = [
    "organization",
    "extension",
    "supervisor",
    "wallboard",
    "eventregistration",
    "queuecall",
    "bargeinattempt",
    "user",
]


@pytest.mark.parametrize("model", MODELS)
def test_the_list_shows_only_her_organizations_rows(
    acme_admin: Client, records: Any, model: str
) -> None:
    own, other = records["Acme"][model], records["Globex"][model]

    response = acme_admin.get(changelist(own))

    html = response.content.decode()
    assert response.status_code == 200
    assert url(own) in html
    assert url(other) not in html
    # Nor does a filter or a column name the other organization.
    assert "Globex" not in html


@pytest.mark.parametrize("model", MODELS)
def test_another_organizations_object_answers_404_by_url(
    acme_admin: Client, records: Any, model: str
) -> None:
    own, other = records["Acme"][model], records["Globex"][model]

    assert acme_admin.get(url(own)).status_code == 200
    assert acme_admin.get(url(other)).status_code == 404
    assert acme_admin.get(url(other, "history")).status_code == 404
    # The same answer as an object that does not exist: nothing tells them apart.
    missing = f"{changelist(other)}987654/change/"
    assert acme_admin.get(missing).status_code == 404


@pytest.mark.parametrize("model", MODELS)
def test_a_change_posted_to_another_organizations_object_changes_nothing(
    acme_admin: Client, records: Any, model: str
) -> None:
    other = records["Globex"][model]
    before = snapshot(other)
    # Every field of the object, with its texts altered: what a forged form would send.
    forged = {k: f"{v}9" if isinstance(v, str) else v for k, v in before.items() if v is not None}
    forged = {k: v for k, v in forged.items() if not isinstance(v, list)}

    response = acme_admin.post(url(other), forged)

    assert response.status_code == 404
    assert snapshot(other) == before


@pytest.mark.parametrize("model", MODELS)
def test_another_organizations_object_cannot_be_deleted(
    acme_admin: Client, records: Any, model: str
) -> None:
    other = records["Globex"][model]
    manager = type(other)._default_manager

    assert acme_admin.get(url(other, "delete")).status_code == 404
    assert acme_admin.post(url(other, "delete"), {"post": "yes"}).status_code == 404
    acme_admin.post(
        changelist(other),
        {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"},
    )
    assert manager.filter(pk=other.pk).exists()


def test_her_own_organizations_objects_can_be_deleted(acme_admin: Client, records: Any) -> None:
    # The refusals above are about the organization, not a delete that never works.
    own = records["Acme"]["wallboard"]
    assert acme_admin.post(url(own, "delete"), {"post": "yes"}).status_code == 302
    assert not Wallboard.objects.filter(pk=own.pk).exists()


def add_forms(records: Any, org: str) -> dict[str, dict[str, Any]]:
    """An add form for each model an admin adds, naming ``org``'s objects."""
    r = records[org]
    prefix = r["organization"].extension_prefix
    newcomer = User.objects.create_user(f"new-{org}")
    return {
        "extension": {
            "organization": r["organization"].pk,
            "number": f"{prefix}*555",
            "type": "term",
            "label": "Forged",
            "caller_id": "",
            "service_level_seconds": "20",
        },
        "supervisor": {
            "user": newcomer.pk,
            "organization": r["organization"].pk,
            "phones": [r["extension"].pk],
            "default_caller_id": "",
            "default_wait_for_pickup": "25",
        },
        "wallboard": {
            "name": "Forged board",
            "organization": r["organization"].pk,
            "queues": [Extension.objects.get(number=f"{prefix}*100").pk],
            "enabled": "on",
            "wait_amber": "30",
            "wait_red": "60",
            "service_level_amber": "80",
            "service_level_red": "60",
        },
    }


@pytest.mark.parametrize("model", ["extension", "supervisor", "wallboard"])
def test_she_cannot_create_an_object_in_another_organization(
    acme_admin: Client, records: Any, model: str
) -> None:
    manager = type(records["Acme"][model])._default_manager
    count = manager.count()

    response = acme_admin.post(f"/admin/calls/{model}/add/", add_forms(records, "Globex")[model])

    assert response.status_code == 200  # the form again, with its errors
    assert "Select a valid choice" in response.content.decode()
    assert manager.count() == count


@pytest.mark.parametrize("model", ["extension", "wallboard"])
def test_the_same_add_in_her_own_organization_is_accepted(
    acme_admin: Client, records: Any, model: str
) -> None:
    manager = type(records["Acme"][model])._default_manager
    count = manager.count()

    response = acme_admin.post(f"/admin/calls/{model}/add/", add_forms(records, "Acme")[model])

    assert response.status_code == 302
    assert manager.count() == count + 1


def test_forms_offer_only_her_organizations_choices(acme_admin: Client, records: Any) -> None:
    acme, globex = Organization.objects.get(name="Acme"), Organization.objects.get(name="Globex")
    acme_phones = {
        str(pk)
        for pk in acme.extensions.filter(type=Extension.Type.PHONE_TERMINAL).values_list(
            "pk", flat=True
        )
    }
    acme_queues = {
        str(pk)
        for pk in acme.extensions.filter(type=Extension.Type.QUEUE).values_list("pk", flat=True)
    }
    acme_users = {
        str(pk)
        for pk in User.objects.filter(supervisor__organization=acme, is_staff=False).values_list(
            "pk", flat=True
        )
    }

    supervisor = acme_admin.get("/admin/calls/supervisor/add/").content.decode()
    wallboard = acme_admin.get("/admin/calls/wallboard/add/").content.decode()
    extension = acme_admin.get("/admin/calls/extension/add/").content.decode()

    for html in (supervisor, wallboard, extension):
        assert options(html, "organization") == {str(acme.pk)}
        assert "Globex" not in html
    assert options(supervisor, "phones") == acme_phones
    assert options(wallboard, "queues") == acme_queues
    # Accounts of Acme's supervisors (not staff) and her own; never Globex's, never admin.
    alice = User.objects.get(username="alice")
    assert options(supervisor, "user") == acme_users | {str(alice.pk)}
    assert str(globex.pk) not in options(extension, "organization")


@pytest.mark.parametrize(
    ("source", "field", "term", "acme_text"),
    [
        ("supervisor", "phones", "0", "0001*024"),
        ("wallboard", "queues", "0", "0001*100"),
        ("supervisor", "organization", "", "Acme"),
        ("supervisor", "user", "", "agent-of-acme"),
    ],
)
def test_the_autocomplete_offers_only_her_organizations_rows(
    acme_admin: Client, records: Any, source: str, field: str, term: str, acme_text: str
) -> None:
    response = acme_admin.get(
        "/admin/autocomplete/",
        {"app_label": "calls", "model_name": source, "field_name": field, "term": term},
    )

    texts = [r["text"] for r in json.loads(response.content)["results"]]
    assert any(acme_text in t for t in texts)
    assert not any("0002*" in t or "Globex" in t or "of-globex" in t for t in texts)
    assert not any(t in ("bob", "admin") for t in texts)


def test_she_cannot_add_organizations_nor_change_which_voipnow_account_hers_is(
    acme_admin: Client, records: Any
) -> None:
    acme = records["Acme"]["organization"]
    before = snapshot(acme)

    assert acme_admin.get("/admin/calls/organization/add/").status_code == 403
    response = acme_admin.post(
        url(acme),
        {
            "name": "Acme",
            "voipnow_id": "2",
            "extension_prefix": "0002",
            "time_zone": "Europe/Bucharest",
            "reasons": "",
            "extensions-TOTAL_FORMS": "0",
            "extensions-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    after = snapshot(acme)
    assert after["time_zone"] == "Europe/Bucharest"  # her organization's own settings are hers
    assert (after["voipnow_id"], after["extension_prefix"]) == (
        before["voipnow_id"],
        before["extension_prefix"],
    )
    assert acme_admin.post(url(acme, "delete"), {"post": "yes"}).status_code == 403


def user_form(user: User, **changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_she_cannot_make_herself_superuser_nor_grant_what_she_lacks(
    acme_admin: Client, records: Any
) -> None:
    alice = User.objects.get(username="alice")
    mighty = Group.objects.create(name="Mighty")
    mighty.permissions.add(Permission.objects.get(codename="delete_group"))
    beyond = Permission.objects.get(codename="change_group")
    held = Permission.objects.get(codename="view_wallboard")

    page = acme_admin.get(url(alice)).content.decode()
    response = acme_admin.post(
        url(alice),
        user_form(
            alice,
            is_superuser="on",
            is_staff="on",
            groups=[mighty.pk],
            user_permissions=[beyond.pk],
        ),
    )
    alice.refresh_from_db()

    assert 'name="is_superuser"' not in page
    assert str(beyond.pk) not in options(page, "user_permissions")
    assert str(held.pk) in options(page, "user_permissions")
    assert str(mighty.pk) not in options(page, "groups")
    assert response.status_code == 200  # refused: not a valid choice
    assert not alice.is_superuser
    assert not alice.groups.filter(pk=mighty.pk).exists()
    assert not alice.user_permissions.filter(pk=beyond.pk).exists()
    assert acme_admin.get("/admin/auth/group/").status_code == 403


def test_she_manages_her_organizations_accounts_only(acme_admin: Client, records: Any) -> None:
    admin_user = User.objects.get(username="admin")
    agent = records["Acme"]["user"]

    assert acme_admin.get(url(admin_user)).status_code == 404
    assert acme_admin.get(url(admin_user, "password")).status_code == 404
    assert acme_admin.get(url(records["Globex"]["user"], "password")).status_code == 404
    response = acme_admin.post(
        url(agent, "password"),
        {"password1": "a new long passphrase", "password2": "a new long passphrase"},
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.check_password("a new long passphrase")


def test_a_user_she_adds_becomes_a_supervisor_of_her_organization(
    acme_admin: Client, records: Any
) -> None:
    response = acme_admin.post(
        "/admin/auth/user/add/",
        {
            "username": "newcomer",
            "usable_password": "true",
            "password1": "a long enough passphrase",
            "password2": "a long enough passphrase",
        },
    )

    assert response.status_code == 302
    newcomer = User.objects.get(username="newcomer")
    assert newcomer.supervisor.organization.name == "Acme"
    assert acme_admin.get(url(newcomer)).status_code == 200


def test_a_staff_user_who_supervises_nothing_sees_no_organizations_rows(
    records: Any,
) -> None:
    staff = User.objects.create_user("unattached", password="x")
    grant_admin_rights(staff)
    client = Client()
    client.force_login(staff)

    for model in ["organization", "extension", "wallboard", "queuecall", "bargeinattempt"]:
        html = client.get(changelist(records["Acme"][model])).content.decode()
        assert url(records["Acme"][model]) not in html
        assert client.get(url(records["Acme"][model])).status_code == 404
    response = client.post("/admin/calls/extension/add/", add_forms(records, "Acme")["extension"])
    assert "Select a valid choice" in response.content.decode()
    assert client.get("/admin/auth/user/add/").status_code == 403


def test_a_superuser_sees_every_organization(records: Any) -> None:
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    for model in MODELS:
        html = client.get(changelist(records["Acme"][model])).content.decode()
        assert url(records["Acme"][model]) in html
        assert url(records["Globex"][model]) in html
    html = client.get("/admin/calls/supervisor/add/").content.decode()
    assert {str(o.pk) for o in Organization.objects.all()} == options(html, "organization")


def test_model_permissions_still_apply_within_her_organization(records: Any) -> None:
    alice = User.objects.get(username="alice")
    alice.is_staff = True
    alice.save()
    alice.user_permissions.add(Permission.objects.get(codename="view_wallboard"))
    client = Client()
    client.force_login(alice)
    own = records["Acme"]["wallboard"]

    assert client.get(changelist(own)).status_code == 200
    assert client.post(url(own, "delete"), {"post": "yes"}).status_code == 403
    assert client.get("/admin/calls/extension/").status_code == 403

"""What admins configure: extensions numbered for their organization, supervisors' phones."""

from __future__ import annotations

import asyncio
import re
from html import unescape
from typing import Any
from urllib.parse import unquote

import pytest
import segno
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from calls.models import EventRegistration, Extension, Organization, Supervisor, Wallboard

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(world: Any) -> Client:
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    return client


def test_an_extension_number_must_carry_its_organizations_prefix(admin_client: Client) -> None:
    acme = Organization.objects.get(name="Acme")
    form = {"organization": acme.pk, "type": "term", "label": "New desk", "caller_id": ""}

    wrong = admin_client.post("/admin/calls/extension/add/", {**form, "number": "0002*777"})
    malformed = admin_client.post("/admin/calls/extension/add/", {**form, "number": "0001-777"})
    right = admin_client.post("/admin/calls/extension/add/", {**form, "number": "0001*777"})

    assert "Extensions of Acme start with 0001*." in wrong.content.decode()
    assert "Enter the number as yyyy*zzz" in malformed.content.decode()
    assert right.status_code == 302
    assert Extension.objects.get(number="0001*777").organization == acme


def test_every_voipnow_extension_type_can_be_chosen(admin_client: Client) -> None:
    html = admin_client.get("/admin/calls/extension/add/").content.decode()
    for label in [
        "Phone Terminal",
        "Queue",
        "IVR",
        "Voicemail Center",
        "Conference",
        "Callback",
        "Calling Card",
        "Intercom/Paging",
        "Queue Login Center",
    ]:
        assert f">{label}</option>" in html


def test_a_supervisor_may_only_be_given_phone_terminals_of_their_organization(
    admin_client: Client,
) -> None:
    alice = Supervisor.objects.get(user__username="alice")
    url = f"/admin/calls/supervisor/{alice.pk}/change/"
    base = {
        "user": alice.user_id,
        "organization": alice.organization_id,
        "default_caller_id": "",
        "default_wait_for_pickup": "25",
    }
    queue = Extension.objects.get(number="0001*100")
    other = Extension.objects.get(number="0002*024")
    own = Extension.objects.get(number="0001*025")

    refused = admin_client.post(url, {**base, "phones": [other.pk]})
    accepted = admin_client.post(url, {**base, "phones": [own.pk]})

    assert "0002*024 is not an extension of Acme." in refused.content.decode()
    offered = re.search(
        r'<select name="phones".*?</select>', admin_client.get(url).content.decode(), re.S
    )
    assert offered is not None
    assert f'value="{own.pk}"' in offered.group(0)
    assert f'value="{queue.pk}"' not in offered.group(0)  # only phone terminals are offered
    assert accepted.status_code == 302
    assert list(alice.phones.values_list("number", flat=True)) == ["0001*025"]


def test_a_default_caller_id_must_read_name_number(admin_client: Client) -> None:
    alice = Supervisor.objects.get(user__username="alice")
    response = admin_client.post(
        f"/admin/calls/supervisor/{alice.pk}/change/",
        {
            "user": alice.user_id,
            "organization": alice.organization_id,
            "default_caller_id": "just a name",
            "default_wait_for_pickup": "25",
        },
    )
    assert "Enter a caller ID of the form Name &lt;number&gt;" in response.content.decode()


def test_the_admin_shows_which_call_events_each_extension_sends_read_only(
    admin_client: Client,
) -> None:
    queue = Extension.objects.get(number="0001*100")
    for event_type, state, code in [(0, "registered", ""), (3, "refused", "pcet_type_invalid")]:
        EventRegistration.objects.create(
            extension=queue, type=event_type, state=state, code=code, checked_at=timezone.now()
        )
    listing = admin_client.get("/admin/calls/eventregistration/").content.decode()
    assert "Refused by VoipNow" in listing
    assert "pcet_type_invalid" in listing
    extension = admin_client.get(f"/admin/calls/extension/{queue.pk}/change/").content.decode()
    assert "Answer (incoming)" in extension
    assert "Refused by VoipNow" in extension
    row = EventRegistration.objects.get(type=3)
    response = admin_client.post(
        f"/admin/calls/eventregistration/{row.pk}/change/", {"state": "registered"}
    )
    assert response.status_code == 403
    assert admin_client.get("/admin/calls/eventregistration/add/").status_code == 403


def test_a_wallboards_page_shows_its_address_and_a_qr_code_of_it(
    admin_client: Client, settings: Any
) -> None:
    settings.CALLBOARD_PUBLIC_URL = "https://callboard.example"
    board = Wallboard.objects.get(organization__name="Acme")

    html = admin_client.get(f"/admin/calls/wallboard/{board.pk}/change/").content.decode()

    address = f"https://callboard.example/wallboard/{board.token}/"
    assert address in html
    qr = re.search(r'<img src="(data:image/svg\+xml[^"]+)" alt="QR code of ([^"]+)"', html)
    assert qr
    assert qr.group(2) == address
    # The picture is the QR code of the address (segno draws it the same way every time).
    assert unescape(qr.group(1)) == segno.make(address, error="m").svg_data_uri(scale=4, border=2)
    assert unquote(qr.group(1).split(",", 1)[1]).startswith("<svg")


def test_a_queues_long_wait_alert_is_set_in_the_admin_and_tells_the_watcher(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from calls.live import DIRECTORY_CHANGED, WATCHER_CHANNEL

    queue = Extension.objects.get(number="0001*100")
    phone = Extension.objects.get(number="0001*024")
    form = {
        "organization": queue.organization_id,
        "number": queue.number,
        "type": "phoneQueue",
        "label": "Sales",
        "caller_id": "",
        "service_level_seconds": "20",
        # The (read-only) Call Events inline's management form.
        "event_registrations-TOTAL_FORMS": "0",
        "event_registrations-INITIAL_FORMS": "0",
    }
    layer = get_channel_layer()
    async_to_sync(layer.flush)()

    with django_capture_on_commit_callbacks(execute=True):
        saved = admin_client.post(
            f"/admin/calls/extension/{queue.pk}/change/", {**form, "long_wait_seconds": "90"}
        )
    refused = admin_client.post(
        "/admin/calls/extension/add/",
        {**form, "number": "0001*778", "type": "term", "long_wait_seconds": "90"},
    )
    ignored = admin_client.post(
        f"/admin/calls/extension/{phone.pk}/change/",
        {**form, "number": phone.number, "type": "term", "long_wait_seconds": "90"},
    )

    assert saved.status_code == 302
    queue.refresh_from_db()
    assert queue.long_wait_seconds == 90

    async def told() -> Any:
        return await asyncio.wait_for(layer.receive(WATCHER_CHANNEL), 2)

    assert async_to_sync(told)() == DIRECTORY_CHANGED
    assert "Only a queue&#x27;s callers wait" in refused.content.decode()
    assert not Extension.objects.filter(number="0001*778").exists()
    assert ignored.status_code == 302
    phone.refresh_from_db()
    assert phone.long_wait_seconds is None
    # Shown for queues; a phone's page has no queue settings.
    assert (
        'name="long_wait_seconds"'
        in admin_client.get(f"/admin/calls/extension/{queue.pk}/change/").content.decode()
    )
    assert (
        'name="long_wait_seconds"'
        not in admin_client.get(f"/admin/calls/extension/{phone.pk}/change/").content.decode()
    )


def organization_form(org: Organization, **fields: str) -> dict[str, str]:
    """The organization's change form as the admin posts it, its extensions left as they are."""
    return {
        "name": org.name,
        "voipnow_id": org.voipnow_id,
        "extension_prefix": org.extension_prefix,
        "time_zone": org.time_zone,
        "extensions-TOTAL_FORMS": "0",
        "extensions-INITIAL_FORMS": "0",
        **fields,
    }


def test_an_organization_can_require_a_reason_from_a_list(admin_client: Client) -> None:
    acme = Organization.objects.get(name="Acme")
    url = f"/admin/calls/organization/{acme.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="reason_required"' in page
    assert 'name="reasons"' in page

    response = admin_client.post(
        url, organization_form(acme, reason_required="on", reasons="Coaching\r\nComplaint\r\n")
    )

    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.reason_required is True
    assert acme.reason_choices == ["Coaching", "Complaint"]
    listing = admin_client.get("/admin/calls/organization/").content.decode()
    assert "reason required" in listing.lower()


@pytest.mark.parametrize(
    ("reasons", "words"),
    [
        ("Coaching\tteam", "without tabs or control characters"),
        ("Coach\x1bing", "without tabs or control characters"),
        ("Coach\x00ing", "Null characters are not allowed"),
        ("x" * 501, "at most 500 characters"),
    ],
    ids=["tab", "ESC", "NUL", "501"],
)
def test_a_reason_a_supervisor_could_not_send_cannot_be_listed(
    reasons: str, words: str, admin_client: Client
) -> None:
    acme = Organization.objects.get(name="Acme")
    response = admin_client.post(
        f"/admin/calls/organization/{acme.pk}/change/",
        organization_form(acme, reason_required="on", reasons=f"Coaching\n{reasons}"),
    )
    assert response.status_code == 200
    assert words in response.content.decode()
    acme.refresh_from_db()
    assert (acme.reason_required, acme.reasons) == (False, "")

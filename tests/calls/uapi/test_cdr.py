"""Call records: the emulator's List CDR after calls end (answered, abandoned, simple calls),
its filters and pages, both versions' answers, and UapiClient.list_cdr on every shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from calls.uapi.client import UapiClient
from calls.uapi.emulator import Emulator
from calls.uapi.errors import UapiRejected
from calls.uapi.types import CallRecord, WireFormatError
from tests.support.waiting import wait_until

every_voipnow = pytest.mark.every_voipnow


def hour_ago() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()


def records_of(response: httpx.Response) -> dict[str, Any]:
    """The collection of a 5.x List CDR answer (wrapped in an array)."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list)
    assert len(body) == 1
    collection: dict[str, Any] = body[0]
    return collection


async def answered_and_abandoned(emulator: Emulator) -> tuple[str, str]:
    """One call answered by its agent, then ended; one that rang nobody and was given up."""
    emulator.set_speed(200)
    answered = emulator.create_call("0001*100", talk_seconds=20)
    emulator.set_agent_status("0001*101", 0)
    for agent in emulator.queue_agents("0001*101"):
        emulator.set_agent_status(agent, 2, "0001*101")
    abandoned = emulator.create_call("0001*101", patience_seconds=10)
    await wait_until(
        lambda: answered.id not in emulator.calls and abandoned.id not in emulator.calls,
        what="both calls to end",
    )
    return answered.id, abandoned.id


async def test_an_answered_queue_call_is_recorded_with_its_agent(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    answered_id, abandoned_id = await answered_and_abandoned(emulator)
    response = await http.get("/uapi/cdr/", params={"startDate": hour_ago()}, headers=auth)
    entry = records_of(response)["entry"]
    # Keyed by the record id, which is the PhoneCall id.
    assert set(entry) == {answered_id, abandoned_id}
    record = entry[answered_id]
    assert record["id"] == answered_id
    assert record["extension"] == "0001*100"
    assert record["ownerId"] == "1"
    assert record["disposition"] == 0
    assert record["flow"] == 8
    assert record["destination"] == ["0001*201"]  # the agent who answered
    assert record["source"][0].startswith("+")
    assert record["published"] <= record["answered"] <= record["ended"]
    assert record["billsec"] <= record["duration"]
    legs = {leg["extension"]: leg for leg in record["phoneCallView"]}
    assert legs["0001*201"]["disposition"] == 0
    assert "answered" in legs["0001*201"]


async def test_an_abandoned_call_is_recorded_as_no_answer(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    _, abandoned_id = await answered_and_abandoned(emulator)
    response = await http.get("/uapi/cdr/", params={"startDate": hour_ago()}, headers=auth)
    record = records_of(response)["entry"][abandoned_id]
    assert record["disposition"] == 3
    assert "answered" not in record
    assert record["billsec"] == 0
    assert record["destination"] == ["0001*101"]  # nobody answered: the queue


async def test_a_simple_call_is_recorded_with_its_source_and_destination(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    emulator.set_speed(200)
    made = await http.post(
        "/uapi/phoneCalls/@me/simple",
        params={"callDuration": 5},
        json={
            "extension": "0001*024",
            "phoneCallView": [{"source": ["0001*024"], "destination": ["+14155550123"]}],
        },
        headers=auth,
    )
    call_id = made.json()[0]["id"]
    await wait_until(lambda: call_id not in emulator.calls, what="the simple call to end")
    response = await http.get("/uapi/cdr/", params={"startDate": hour_ago()}, headers=auth)
    record = records_of(response)["entry"][call_id]
    assert record["source"] == ["0001*024"]
    assert record["destination"] == ["+14155550123"]
    assert record["flow"] == 4
    assert record["disposition"] == 0
    assert record["extension"] == "0001*024"


async def test_live_calls_have_no_record(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    emulator.create_call("0001*100", auto=False)
    response = await http.get("/uapi/cdr/", params={"startDate": hour_ago()}, headers=auth)
    assert response.status_code == 204


async def test_filters_choose_records(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    answered_id, abandoned_id = await answered_and_abandoned(emulator)
    since = {"startDate": hour_ago()}

    async def ids(**params: Any) -> set[str]:
        response = await http.get("/uapi/cdr/", params={**since, **params}, headers=auth)
        return set() if response.status_code == 204 else set(records_of(response)["entry"])

    assert await ids(disposition=0) == {answered_id}
    assert await ids(disposition=3) == {abandoned_id}
    assert await ids(flow=8) == {answered_id, abandoned_id}
    assert await ids(flow=2) == set()
    assert await ids(destination="0001*201") == {answered_id}
    assert await ids(filterBy="destination", filterValue="0001*101") == {abandoned_id}
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert await ids(startDate=later, endDate=later) == set()
    earlier = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    assert await ids(endDate=earlier) == set()
    # Another organization's account sees none of Acme's records.
    assert await ids() == {answered_id, abandoned_id}
    globex = await http.get("/uapi/cdr/2/", params=since, headers=auth)
    acme = await http.get("/uapi/cdr/1/", params=since, headers=auth)
    assert globex.status_code == 204
    assert set(records_of(acme)["entry"]) == {answered_id, abandoned_id}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"startDate": "yesterday"}, "cdr_start_date_invalid"),
        ({"endDate": "soon"}, "cdr_end_date_invalid"),
        ({"disposition": "7"}, "cdr_disposition_invalid"),
        ({"flow": "3"}, "cdr_flow_invalid"),
        ({"source": "abc"}, "cdr_source_invalid"),
        (
            {"startDate": "2026-02-01T00:00:00Z", "endDate": "2026-01-01T00:00:00Z"},
            "cdr_invalid_date_parameters",
        ),
        ({"fields": "nope"}, "fields_invalid"),
        ({"count": "5000"}, "count_invalid"),
    ],
)
async def test_bad_filters_are_refused_with_their_codes(
    http: httpx.AsyncClient, auth: dict[str, str], params: dict[str, str], code: str
) -> None:
    response = await http.get("/uapi/cdr/", params=params, headers=auth)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


async def test_an_owner_outside_the_account_is_refused(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await http.get("/uapi/cdr/999/", headers=auth)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "user_invalid"


async def test_records_are_paged_and_linked(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    calls = [emulator.create_call("0002*100", auto=False) for _ in range(5)]
    for call in calls:
        emulator.hangup_call(call.id)
    first = records_of(
        await http.get("/uapi/cdr/", params={"startDate": hour_ago(), "count": 2}, headers=auth)
    )
    assert first["totalResults"] == 5
    assert list(first["entry"]) == [c.id for c in calls[:2]]
    assert "prev" not in first
    second = records_of(await http.get(first["next"], headers=auth))
    assert list(second["entry"]) == [c.id for c in calls[2:4]]
    assert "prev" in second
    newest = records_of(
        await http.get(
            "/uapi/cdr/",
            params={
                "startDate": hour_ago(),
                "count": 1,
                "sortOrder": "descending",
                "fields": "id,disposition",
            },
            headers=auth,
        )
    )
    assert newest["entry"] == {calls[-1].id: {"id": calls[-1].id, "disposition": 3}}


@pytest.mark.parametrize("voipnow_version", [3], indirect=True)
async def test_voipnow_3_has_no_cdr(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for path in ("/uapi/cdr/", "/uapi/cdr/1/", "/unifiedapi/cdr"):
        response = await http.get(path, headers=auth)
        assert response.status_code == 501, path
        assert response.json()["error"]["code"] == "request_not_implemented"


async def test_records_are_kept_until_a_reset(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    emulator.hangup_call(emulator.create_call("0001*100", auto=False).id)
    assert len(emulator.cdrs) == 1
    emulator.reset()
    response = await http.get("/uapi/cdr/", params={"startDate": hour_ago()}, headers=auth)
    assert response.status_code == 204


# ---- the client ---------------------------------------------------------------------------


async def test_list_cdr_reads_the_emulator_records(emulator: Emulator, uapi: UapiClient) -> None:
    answered_id, abandoned_id = await answered_and_abandoned(emulator)
    now = datetime.now(UTC)
    records = await uapi.list_cdr(start=now - timedelta(hours=1), end=now)
    by_id = {r.id: r for r in records}
    assert set(by_id) == {answered_id, abandoned_id}
    answered = by_id[answered_id]
    assert answered.was_answered
    assert answered.destination == ("0001*201",)
    assert answered.phone_call_id == answered_id
    assert answered.extension == "0001*100"
    assert answered.answered is not None
    assert answered.ended is not None
    assert not by_id[abandoned_id].was_answered
    assert by_id[abandoned_id].disposition == 3
    acme = await uapi.list_cdr(start=now - timedelta(hours=1), end=now, owner_id="2")
    assert acme == ()


async def test_list_cdr_reads_every_page(emulator: Emulator, uapi: UapiClient) -> None:
    for _ in range(1205):
        call = emulator.create_call("0001*100", auto=False)
        emulator.hangup_call(call.id)
    now = datetime.now(UTC)
    records = await uapi.list_cdr(start=now - timedelta(hours=1), end=now + timedelta(minutes=1))
    assert len({r.id for r in records}) == 1205


@pytest.mark.parametrize("voipnow_version", [3], indirect=True)
async def test_list_cdr_on_voipnow_3_is_refused_as_not_implemented(uapi: UapiClient) -> None:
    now = datetime.now(UTC)
    with pytest.raises(UapiRejected) as refused:
        await uapi.list_cdr(start=now - timedelta(hours=1), end=now)
    assert refused.value.code == "request_not_implemented"
    assert refused.value.status == 501


def record_json(record_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": record_id, "published": "2026-11-27T10:00:00Z", **extra}


LEGS_ONLY = record_json(
    "c1",
    phoneCallView=[
        {
            "source": ["+4420"],
            "destination": ["0001*100"],
            "flow": 8,
            "disposition": 3,
            "duration": 12,
        },
        {
            "source": ["+4420"],
            "destination": ["0001*201"],
            "flow": 8,
            "disposition": 0,
            "answered": "2026-11-27T10:00:09Z",
            "duration": 40,
        },
    ],
)


@pytest.mark.parametrize(
    "body",
    [
        {"totalResults": 2, "entry": {"c1": LEGS_ONLY, "c2": record_json("c2")}},
        [{"totalResults": 2, "entry": {"c1": LEGS_ONLY, "c2": record_json("c2")}}],
        {"totalResults": 2, "entry": [LEGS_ONLY, record_json("c2")]},
        [{"entry": [LEGS_ONLY, record_json("c2")]}],
    ],
    ids=["keyed", "wrapped-keyed", "list", "wrapped-list"],
)
async def test_list_cdr_reads_every_collection_shape(body: Any) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token.php"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        seen.append(request)
        return httpx.Response(200, json=body)

    async with UapiClient(
        "http://voipnow.test", "app", "secret", transport=httpx.MockTransport(answer)
    ) as client:
        start = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
        records = await client.list_cdr(start=start, end=start + timedelta(hours=1))
    assert [r.id for r in records] == ["c1", "c2"]
    first = records[0]
    # Read from the legs when the record has no summary of its own.
    assert first.source == ("+4420",)
    assert first.destination == ("0001*100",)
    assert first.was_answered
    assert first.flow == 8
    assert records[1].disposition is None
    assert seen[0].url.path == "/uapi/cdr/"
    assert seen[0].url.params["startDate"] == "2026-11-27T09:30:00Z"
    assert seen[0].url.params["endDate"] == "2026-11-27T10:30:00Z"


def test_a_record_without_id_or_start_is_unreadable() -> None:
    with pytest.raises(WireFormatError):
        CallRecord.from_json({"published": "2026-11-27T10:00:00Z"})
    with pytest.raises(WireFormatError):
        CallRecord.from_json({"id": "c1"})
    with pytest.raises(WireFormatError):
        CallRecord.from_json(["c1"])
    minimal = CallRecord.from_json(record_json("c1"))
    assert minimal.phone_call_id == "c1"
    assert minimal.source == ()
    assert minimal.answered is None

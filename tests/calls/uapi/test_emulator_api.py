"""The emulator's UAPI surface: OAuth, tokens, contexts, List/Delete PhoneCalls, QueueAgents,
Presence, PhoneCallEvents management and the common errors."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import httpx
import pytest

from calls.uapi.emulator import Emulator
from calls.uapi.emulator.world import App
from tests.support.waiting import wait_until

from .conftest import BASE, get_token

CALLS = "/uapi/phoneCalls/@me/@self"


def register_alice_app(emulator: Emulator) -> None:
    """Register the app ``alice-app`` to Alice, user 12 (the world's apps are read-only)."""
    alice_app = App("alice-app", "alice-app-secret", "12")
    emulator.world = replace(emulator.world, apps={**emulator.world.apps, "alice-app": alice_app})


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def new_call(
    http: httpx.AsyncClient, queue: str = "0001*100", **extra: Any
) -> dict[str, Any]:
    response = await http.post("/_emulator/calls", json={"queue": queue, **extra})
    assert response.status_code == 201, response.text
    return response.json()


# --------------------------------------------------------------------------- OAuth and tokens


async def test_it_issues_a_bearer_token_for_client_credentials(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/oauth/token.php",
        data={
            "grant_type": "client_credentials",
            "client_id": "demo-app",
            "client_secret": "demo-secret",
            "type": "unifiedapi",
            "redirect_uri": "https://x/ouath/token.php",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] is None
    assert len(body["access_token"]) == 40


async def test_it_refuses_wrong_client_credentials(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/oauth/token.php",
        data={"grant_type": "client_credentials", "client_id": "demo-app", "client_secret": "x"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "The client credentials are invalid",
    }


async def test_it_refuses_other_grant_types(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/oauth/token.php",
        data={"grant_type": "password", "client_id": "demo-app", "client_secret": "demo-secret"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_it_answers_401_without_a_token(http: httpx.AsyncClient) -> None:
    response = await http.get(CALLS)
    assert response.status_code == 401
    assert error_code(response) == "access_denied"


async def test_it_answers_401_for_an_unknown_token(http: httpx.AsyncClient) -> None:
    response = await http.get(CALLS, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert error_code(response) == "access_denied"


async def test_it_accepts_the_token_as_access_request_token(http: httpx.AsyncClient) -> None:
    await new_call(http)
    token = await get_token(http)
    plain = await http.get(CALLS, params={"accessRequestToken": token})
    prefixed = await http.get(CALLS, params={"accessRequestToken": f"Bearer {token}"})
    assert plain.status_code == prefixed.status_code == 200
    assert plain.json()[0]["totalResults"] == 1


async def test_a_token_expires_after_the_lifetime_set_by_the_control_api(
    http: httpx.AsyncClient,
) -> None:
    assert (await http.put("/_emulator/tokens/lifetime", json={"seconds": 1})).status_code == 200
    response = await http.post(
        "/oauth/token.php",
        data={
            "grant_type": "client_credentials",
            "client_id": "demo-app",
            "client_secret": "demo-secret",
        },
    )
    assert response.json()["expires_in"] == 1
    # The token was issued before this moment, for the second it says.
    expires_by = time.time() + response.json()["expires_in"]
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert (await http.get(CALLS, headers=headers)).status_code == 204
    await wait_until(lambda: time.time() > expires_by, 5, "the token's lifetime to pass")
    expired = await http.get(CALLS, headers=headers)
    assert expired.status_code == 401
    assert error_code(expired) == "access_denied"


async def test_revoked_tokens_are_refused(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    revoked = await http.post("/_emulator/tokens/revoke")
    assert revoked.json()["revoked"] >= 1
    assert (await http.get(CALLS, headers=auth)).status_code == 401


# --------------------------------------------------------------------------- contexts


@pytest.mark.parametrize("prefix", ["/uapi", "/unifiedapi"])
async def test_both_prefixes_list_the_same_calls(
    http: httpx.AsyncClient, auth: dict[str, str], prefix: str
) -> None:
    call = await new_call(http)
    response = await http.get(f"{prefix}/phoneCalls/@me/@self", headers=auth)
    assert response.status_code == 200
    assert [e["id"] for e in response.json()[0]["entry"]] == [call["id"]]


@pytest.mark.parametrize("user", ["abc", "999", "-1"])
async def test_it_refuses_an_unknown_user_id(
    http: httpx.AsyncClient, auth: dict[str, str], user: str
) -> None:
    response = await http.get(f"/uapi/phoneCalls/{user}/@self", headers=auth)
    assert response.status_code == 400
    assert error_code(response) == "user_invalid"


async def test_it_refuses_a_user_id_above_the_token_account(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    # An app registered to Alice (user 12) cannot speak for the organization or for Bob.
    register_alice_app(emulator)
    headers = {"Authorization": f"Bearer {await get_token(http, 'alice-app')}"}
    for user in ("1", "22", "100"):
        response = await http.get(f"/uapi/phoneCalls/{user}/@self", headers=headers)
        assert error_code(response) == "user_invalid", user
    assert (await http.get("/uapi/phoneCalls/12/@self", headers=headers)).status_code == 204


async def test_a_user_app_sees_only_its_own_extensions(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    register_alice_app(emulator)
    headers = {"Authorization": f"Bearer {await get_token(http, 'alice-app')}"}
    await new_call(http)
    agent = await http.get("/uapi/phoneCalls/@me/0001*201", headers=headers)
    assert agent.status_code == 400
    assert error_code(agent) == "extension_invalid"
    assert (await http.get("/uapi/phoneCalls/@me/@self", headers=headers)).status_code == 204


async def test_it_refuses_an_extension_that_does_not_exist(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for ext in ("0001*999", "garbage", "0009*100"):
        response = await http.get(f"/uapi/phoneCalls/@me/{ext}", headers=auth)
        assert response.status_code == 400
        assert error_code(response) == "extension_invalid"


async def test_owner_resolves_to_the_user_owning_the_extension(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    call = await new_call(http)
    response = await http.get("/uapi/phoneCalls/@owner/0001*100", headers=auth)
    assert [e["id"] for e in response.json()[0]["entry"]] == [call["id"]]


async def test_a_numeric_user_id_below_the_token_account_is_accepted(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await new_call(http, "0001*100")
    await new_call(http, "0002*100")
    acme = await http.get("/uapi/phoneCalls/1/@self", headers=auth)
    globex_user = await http.get("/uapi/phoneCalls/21/@self", headers=auth)
    assert [e["ownerName"] for e in acme.json()[0]["entry"]] == ["Acme"]
    assert [e["ownerName"] for e in globex_user.json()[0]["entry"]] == ["Globex"]


async def test_unknown_paths_under_the_prefix_are_not_implemented(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    # List CDR is answered on 5.x (tests/calls/uapi/test_cdr.py covers both versions).
    for path in (
        "/uapi/phoneCalls/@me/conferenceInvite",
        "/unifiedapi/faxes/@me/0001*024",
        "/uapi/phoneCalls/@me/callback",
    ):
        method = "POST" if path.startswith("/uapi/phoneCalls") else "GET"
        response = await http.request(method, path, headers=auth)
        assert response.status_code == 501, path
        assert error_code(response) == "request_not_implemented"


# --------------------------------------------------------------------------- List PhoneCalls


async def test_the_list_answers_204_when_nothing_matches(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await http.get(CALLS, headers=auth)
    assert response.status_code == 204
    assert response.content == b""


async def test_an_unknown_call_id_answers_no_entry(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await new_call(http)
    response = await http.get(f"{CALLS}/0123456789abcdef0123", headers=auth)
    assert response.status_code == 200
    assert response.json() == [{"startIndex": 0, "itemsPerPage": 20, "totalResults": 0}]


async def test_a_call_by_id_answers_the_envelope_with_one_entry(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    call = await new_call(http, autoAnswer=False)
    await new_call(http)
    response = await http.get(f"/uapi/phoneCalls/@me/0001*100/{call['id']}", headers=auth)
    body = response.json()[0]
    assert body["totalResults"] == 1
    entry = body["entry"][0]
    assert entry["id"] == call["id"]
    assert len(entry["id"]) == 20
    assert int(entry["id"], 16) >= 0
    assert entry["links"]["self"] == f"{BASE}/uapi/phoneCalls/11/0001*100/{call['id']}"
    view = entry["phoneCallView"][0]
    assert view == {
        "id": "00",
        "extension": "0001*100",
        "source": view["source"],
        "destination": ["0001*100"],
        "flow": 8,
        "status": 4,
        "callerId": view["callerId"],
    }
    assert "answered" not in entry  # null fields are omitted, never null


async def test_paging_gives_next_and_prev_links(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await http.post("/_emulator/calls", json={"queue": "0001*100", "count": 5, "autoAnswer": False})
    first = (await http.get(CALLS, params={"count": 2}, headers=auth)).json()[0]
    assert first["totalResults"] == 5
    assert len(first["entry"]) == 2
    assert "prev" not in first
    assert first["next"].startswith(f"{BASE}/uapi/phoneCalls/@me/@self?")
    second = (await http.get(first["next"], headers=auth)).json()[0]
    assert second["startIndex"] == 2
    assert "startIndex=0" in second["prev"]
    third = (await http.get(second["next"], headers=auth)).json()[0]
    assert len(third["entry"]) == 1
    assert "next" not in third
    ids = [e["id"] for page in (first, second, third) for e in page["entry"]]
    assert len(set(ids)) == 5


async def test_calls_are_ordered_by_published_and_can_be_reversed(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    made = await http.post(
        "/_emulator/calls", json={"queue": "0001*100", "count": 3, "autoAnswer": False}
    )
    ids = [c["id"] for c in made.json()]
    up = await http.get(CALLS, headers=auth)
    down = await http.get(CALLS, params={"sortOrder": "descending"}, headers=auth)
    assert [e["id"] for e in up.json()[0]["entry"]] == ids
    assert [e["id"] for e in down.json()[0]["entry"]] == ids[::-1]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"count": "0"}, "count_invalid"),
        ({"count": "5001"}, "count_invalid"),
        ({"count": "many"}, "count_invalid"),
        ({"startIndex": "5001"}, "startindex_invalid"),
        ({"filterBy": "extension", "filterValue": "x"}, "filterby_invalid"),
        ({"filterBy": "id"}, "filtervalue_invalid"),
        ({"filterBy": "published", "filterValue": "yesterday"}, "filtervalue_invalid"),
        ({"filterBy": "id", "filterValue": "x", "filterOp": "lessThan"}, "filterop_invalid"),
        ({"fields": "id,colour"}, "fields_invalid"),
        ({"sortOrder": "sideways"}, "sortorder_invalid"),
    ],
)
async def test_it_refuses_bad_list_parameters(
    http: httpx.AsyncClient, auth: dict[str, str], params: dict[str, str], code: str
) -> None:
    await new_call(http)
    response = await http.get(CALLS, params=params, headers=auth)
    assert response.status_code == 400
    assert error_code(response) == code


async def test_fields_keeps_only_the_asked_fields_and_always_the_id(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await new_call(http)
    response = await http.get(CALLS, params={"fields": "published,ownerName"}, headers=auth)
    entry = response.json()[0]["entry"][0]
    assert set(entry) == {"id", "published", "ownerName"}


async def test_filter_by_id_and_in_array(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    made = await http.post(
        "/_emulator/calls", json={"queue": "0001*100", "count": 3, "autoAnswer": False}
    )
    a, b, c = (x["id"] for x in made.json())
    one = await http.get(CALLS, params={"filterBy": "id", "filterValue": b}, headers=auth)
    two = await http.get(
        CALLS,
        params={"filterBy": "id", "filterOp": "inArray", "filterValue": f"{a},{c}"},
        headers=auth,
    )
    assert [e["id"] for e in one.json()[0]["entry"]] == [b]
    assert [e["id"] for e in two.json()[0]["entry"]] == [a, c]


async def test_filter_by_published(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    call = await new_call(http, autoAnswer=False)
    since = {"filterBy": "published", "filterValue": call["published"]}
    before = {**since, "filterOp": "lessThan"}
    future = {"filterBy": "published", "filterValue": "2999-01-01T00:00:00Z"}
    assert (await http.get(CALLS, params=since, headers=auth)).json()[0]["totalResults"] == 1
    assert (await http.get(CALLS, params=before, headers=auth)).status_code == 204
    assert (await http.get(CALLS, params=future, headers=auth)).status_code == 204


# --------------------------------------------------------------------------- Delete PhoneCalls


async def test_delete_hangs_up_a_call(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    call = await new_call(http, autoAnswer=False)
    response = await http.delete(f"{CALLS}/{call['id']}", headers=auth)
    assert response.status_code == 200
    assert response.json() == [{"id": call["id"]}]
    assert (await http.get(CALLS, headers=auth)).status_code == 204
    assert (await http.delete(f"{CALLS}/{call['id']}", headers=auth)).status_code == 204


async def test_delete_refuses_a_phone_number_not_in_the_call(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    call = await new_call(http, autoAnswer=False)
    response = await http.delete(
        f"{CALLS}/{call['id']}", params={"phoneNumber": "+19999999"}, headers=auth
    )
    assert response.status_code == 400
    assert error_code(response) == "pc_phonenumber_invalid"


async def test_delete_with_a_phone_number_hangs_up_only_that_leg(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    call = await new_call(http, autoAnswer=False)
    await http.post(f"/_emulator/calls/{call['id']}/answer", json={"agent": "0001*201"})
    emulator.set_phone("0001*024", answers=False)
    await http.put(
        f"/uapi/phoneCalls/@me/0001*201/{call['id']}",
        json={"action": "BargeIn", "sendCallTo": "0001*024", "phoneCallViewId": "01"},
        headers=auth,
    )
    response = await http.delete(
        f"{CALLS}/{call['id']}", params={"phoneNumber": "0001*024"}, headers=auth
    )
    assert response.json() == [{"id": call["id"]}]
    views = emulator.calls[call["id"]].views
    assert sorted(views) == ["00", "01"]


async def barged(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str], *, answers: bool
) -> dict[str, Any]:
    """A queue call answered by 0001*201 with Alice's 0001*024 barging in on it, ringing
    (``answers=False``) or joined."""
    call = await new_call(http, autoAnswer=False)
    await http.post(f"/_emulator/calls/{call['id']}/answer", json={"agent": "0001*201"})
    emulator.set_phone("0001*024", answers=answers, pickup_delay=0.01)
    put = await http.put(
        f"/uapi/phoneCalls/@me/0001*201/{call['id']}",
        json={"action": "BargeIn", "sendCallTo": "0001*024", "phoneCallViewId": "01"},
        headers=auth,
    )
    assert put.status_code == 202, put.text
    if answers:
        await wait_until(
            lambda: emulator.calls[call["id"]].views["02"].status == 5, what="the barge joined"
        )
    return call


@pytest.mark.parametrize("answers", [True, False], ids=["joined", "ringing"])
async def test_delete_with_a_party_s_extension_ends_only_its_legs(
    answers: bool, emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    call = await barged(emulator, http, auth, answers=answers)

    response = await http.delete(f"/uapi/phoneCalls/@me/0001*024/{call['id']}", headers=auth)

    assert response.status_code == 200
    assert response.json() == [{"id": call["id"]}]
    live = emulator.calls[call["id"]]
    assert sorted(live.views) == ["00", "01"]
    assert all(v.status == 5 for v in live.views.values())
    assert not emulator.is_busy("0001*024")
    assert emulator.rings[0]["outcome"] == ("answered" if answers else "cancelled")
    again = await http.delete(f"/uapi/phoneCalls/@me/0001*024/{call['id']}", headers=auth)
    assert again.status_code == 204
    assert call["id"] in emulator.calls


async def test_delete_with_an_extension_that_has_no_leg_in_the_call_is_204(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    call = await barged(emulator, http, auth, answers=True)
    response = await http.delete(f"/uapi/phoneCalls/@me/0001*025/{call['id']}", headers=auth)
    assert response.status_code == 204
    assert sorted(emulator.calls[call["id"]].views) == ["00", "01", "02"]


async def test_delete_with_the_answered_agent_s_extension_ends_the_conversation(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    call = await barged(emulator, http, auth, answers=True)
    response = await http.delete(f"/uapi/phoneCalls/@me/0001*201/{call['id']}", headers=auth)
    assert response.json() == [{"id": call["id"]}]
    assert call["id"] not in emulator.calls
    assert not emulator.is_busy("0001*024")


async def test_delete_with_a_ringing_agent_s_extension_offers_the_call_to_another(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    emulator.set_phone("0001*201", answers=False)
    call = await new_call(http)
    assert emulator.calls[call["id"]].offered_to == "0001*201"

    response = await http.delete(f"/uapi/phoneCalls/@me/0001*201/{call['id']}", headers=auth)

    assert response.status_code == 200
    live = emulator.calls[call["id"]]
    assert live.offered_to not in (None, "0001*201")
    assert [v.device for v in live.views.values() if v.role == "agent"] == [live.offered_to]


# --------------------------------------------------------------------------- QueueAgents, presence


async def test_queue_agents_lists_and_sets_agent_status(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    url = "/uapi/extensions/@me/0001*100/queue/agents"
    listed = (await http.get(url, headers=auth)).json()[0]
    assert [e["agentNumber"] for e in listed["entry"]] == ["0001*201", "0001*202", "0001*203"]
    assert listed["entry"][0]["links"]["self"] == f"{BASE}{url}/0001*201"
    paused = await http.put(f"{url}/202", json={"status": "2"}, headers=auth)
    assert paused.status_code == 200
    assert paused.json()[0]["status"] == 2
    one = (await http.get(f"{url}/0001*202", headers=auth)).json()[0]
    assert one["entry"][0]["status"] == 2
    call = emulator.create_call("0001*100")
    assert call.offered_to == "0001*201"  # idle the longest, and online


async def test_queue_agents_refuses_bad_input(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    url = "/uapi/extensions/@me/0001*100/queue/agents"
    bad_status = await http.put(f"{url}/0001*201", json={"status": "7"}, headers=auth)
    bad_agent = await http.put(f"{url}/0001*204", json={"status": "1"}, headers=auth)
    on_self = await http.get("/uapi/extensions/@me/@self/queue/agents", headers=auth)
    not_queue = await http.get("/uapi/extensions/@me/0001*201/queue/agents", headers=auth)
    assert error_code(bad_status) == "status_invalid"
    assert error_code(bad_agent) == "qag_agent_invalid"
    assert error_code(on_self) == "extension_invalid"
    assert error_code(not_queue) == "extension_invalid"


async def test_a_paused_agent_is_not_offered_calls(emulator: Emulator) -> None:
    for agent in ("0001*201", "0001*202", "0001*203"):
        emulator.set_agent_status(agent, 2)
    call = emulator.create_call("0001*100")
    assert call.offered_to is None
    assert list(call.views) == ["00"]
    emulator.set_agent_status("0001*203", 1)
    assert call.offered_to == "0001*203"


async def test_presence_follows_the_phone(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    url = "/uapi/extensions/@me/0001*201/presence"
    idle = (await http.get(url, headers=auth)).json()[0]["entry"][0]
    assert idle["status"] == 1
    assert idle["registration"][0]["registration"] == 1
    call = emulator.create_call("0001*100")
    assert (await http.get(url, headers=auth)).json()[0]["entry"][0]["status"] == 2  # ringing
    emulator.answer_call(call.id)
    assert (await http.get(url, headers=auth)).json()[0]["entry"][0]["status"] == 3  # busy
    everything = (await http.get("/uapi/extensions/@me/@self/presence", headers=auth)).json()[0]
    assert everything["totalResults"] == len(emulator.world.extensions)


async def test_presence_writes_a_phone_not_registered_and_one_whose_registration_expired(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    url = "/uapi/extensions/@me/0001*024/presence"
    off = await http.put("/_emulator/phones/0001*024", json={"registered": False})
    assert off.json()["registration"] == -1
    [absent] = (await http.get(url, headers=auth)).json()[0]["entry"]
    expired = await http.put("/_emulator/phones/0001*024", json={"registration": -2})
    assert (expired.json()["registered"], expired.json()["registration"]) == (False, -2)
    [stale] = (await http.get(url, headers=auth)).json()[0]["entry"]
    await http.put("/_emulator/phones/0001*024", json={"registered": True})
    [back] = (await http.get(url, headers=auth)).json()[0]["entry"]

    assert absent == {
        "extension": "0001*024",
        "status": 0,
        "registration": [{"registration": -1, "status": 0}],
    }
    # The phone that was registered is remembered; the expiry is gone.
    [registration] = stale["registration"]
    assert (stale["status"], registration["registration"]) == (0, -2)
    assert registration["agent"]
    assert "expire" not in registration
    assert back["registration"][0]["registration"] == 1
    assert "expire" in back["registration"][0]


async def test_the_control_api_refuses_a_registration_presence_does_not_have(
    http: httpx.AsyncClient,
) -> None:
    for bad in (0, 2, True, "expired"):
        response = await http.put("/_emulator/phones/0001*024", json={"registration": bad})
        assert response.status_code == 400, bad


async def test_a_barging_phone_is_ringing_then_busy_in_presence(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id, "0001*201")
    emulator.set_phone("0001*024", pickup_delay=0.05)
    url = "/uapi/extensions/@me/0001*024/presence"

    async def status() -> int:
        return int((await http.get(url, headers=auth)).json()[0]["entry"][0]["status"])

    assert await status() == 1
    body = {"action": "BargeIn", "sendCallTo": "0001*024", "phoneCallViewId": "01"}
    assert (await http.put(f"{CALLS}/{call.id}", json=body, headers=auth)).status_code == 202
    assert await status() == 2  # ringing
    await wait_until(lambda: emulator.rings[0]["outcome"] == "answered", what="the pickup")
    assert await status() == 3  # busy: on the call
    emulator.hangup_call(call.id)
    assert await status() == 1


async def test_a_phone_that_is_not_registered_is_rung_but_never_picks_up(
    emulator: Emulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    call = emulator.create_call("0001*100", auto=False)
    emulator.answer_call(call.id, "0001*201")
    emulator.set_phone("0001*024", pickup_delay=0.01, registered=False)
    body = {
        "action": "BargeIn",
        "sendCallTo": "0001*024",
        "phoneCallViewId": "01",
        "waitForPickup": 0.3,
    }

    response = await http.put(f"{CALLS}/{call.id}", json=body, headers=auth)

    # VoipNow took the request; no device answers it, so the ring runs out.
    assert response.status_code == 202
    await wait_until(lambda: emulator.rings[0]["outcome"] != "ringing", what="the ring to end")
    assert emulator.rings[0]["outcome"] == "noAnswer"


# --------------------------------------------------------------------------- PhoneCallEvents


async def test_phone_call_events_can_be_created_listed_updated_and_deleted(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    url = "/uapi/extensions/@me/0001*100/phoneCallEvents"
    created = await http.post(
        url,
        json={"type": "0", "method": "1", "url": "http://hooks.test/in", "note": "n"},
        headers=auth,
    )
    assert created.status_code == 200
    event = created.json()
    assert event["type"] == 0
    assert event["method"] == 1
    assert event["status"] == 1
    listed = (await http.get(f"{url}/0", headers=auth)).json()[0]
    assert [e["id"] for e in listed["entry"]] == [event["id"]]
    updated = await http.put(f"{url}/0/{event['id']}", json={"status": "0"}, headers=auth)
    assert updated.json()["status"] == 0
    deleted = await http.delete(url, headers=auth)
    assert deleted.json() == [{"id": event["id"]}]
    assert (await http.get(url, headers=auth)).status_code == 204


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "9", "method": "1", "url": "http://h.test/"}, "pcet_type_invalid"),
        ({"method": "1", "url": "http://h.test/"}, "pcet_type_invalid"),
        ({"type": "0", "method": "3", "url": "http://h.test/"}, "pce_method_invalid"),
        ({"type": "0", "method": "0", "url": "ftp://h.test/"}, "pce_url_invalid"),
        ({"type": "0", "method": "0"}, "pce_url_invalid"),
        (
            {"type": "0", "method": "0", "url": "http://h.test/", "status": "4"},
            "pce_status_invalid",
        ),
    ],
)
async def test_phone_call_events_refuse_bad_input(
    http: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any], code: str
) -> None:
    response = await http.post(
        "/uapi/extensions/@me/0001*201/phoneCallEvents", json=body, headers=auth
    )
    assert response.status_code == 400
    assert error_code(response) == code


async def test_phone_call_events_refuse_self_and_unsupported_extension_types(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {"type": "0", "method": "0", "url": "http://h.test/"}
    on_self = await http.post("/uapi/extensions/@me/@self/phoneCallEvents", json=body, headers=auth)
    voicemail = await http.post(
        "/uapi/extensions/@me/0001*500/phoneCallEvents", json=body, headers=auth
    )
    unknown = await http.put(
        "/uapi/extensions/@me/0001*201/phoneCallEvents/0/abc", json=body, headers=auth
    )
    bad_type = await http.get("/uapi/extensions/@me/0001*201/phoneCallEvents/x", headers=auth)
    assert error_code(on_self) == "extension_invalid"
    assert error_code(voicemail) == "extension_invalid"
    assert error_code(unknown) == "pce_id_invalid"
    assert error_code(bad_type) == "pce_type_invalid"


# --------------------------------------------------------------------------- control API


async def test_the_control_api_creates_many_calls_and_resets(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    made = await http.post("/_emulator/calls", json={"queue": "0002*100", "count": 50})
    assert made.status_code == 201
    assert len(made.json()) == 50
    state = (await http.get("/_emulator/state")).json()
    assert state["calls"]["byOrganization"] == {"1": 0, "2": 50}
    await http.post("/_emulator/reset")
    assert (await http.get("/_emulator/state")).json()["calls"]["total"] == 0
    assert (await http.get(CALLS, headers=auth)).status_code == 204  # the token survived


async def test_the_control_api_answers_a_call_with_a_chosen_agent(
    http: httpx.AsyncClient,
) -> None:
    call = await new_call(http, autoAnswer=False)
    answered = await http.post(f"/_emulator/calls/{call['id']}/answer", json={"agent": "0001*203"})
    body = answered.json()
    assert answered.status_code == 200
    assert "answered" in body
    agent_view = body["phoneCallView"][1]
    assert agent_view["extension"] == "0001*203"
    assert agent_view["status"] == 5
    assert body["phoneCallView"][0]["status"] == 5
    assert (await http.delete(f"/_emulator/calls/{call['id']}")).status_code == 204
    gone = await http.delete(f"/_emulator/calls/{call['id']}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"


async def test_the_control_api_refuses_an_unknown_queue(http: httpx.AsyncClient) -> None:
    response = await http.post("/_emulator/calls", json={"queue": "0001*201"})
    assert response.status_code == 404

"""The UAPI surface: OAuth token endpoint, PhoneCalls, PhoneCallEvents, QueueAgents, Presence.

Handlers parse HTTP and shape answers; the rules live in ``engine.Emulator``. Every handler
runs inside ``uapi_endpoint``, which turns ``UapiError`` into the UAPI error body and any
other exception into ``500 internal_server_error``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from calls.uapi.wire import (
    EXTENSION_SELF,
    AgentStatus,
    CallEventType,
    Disposition,
    ErrorCode,
    ExtensionType,
    Flow,
)

from .call_events import EVENT_EXTENSION_TYPES
from .cdr import RECORD_FIELDS, CallRecord, select_records
from .engine import Emulator
from .errors import STATUS_INVALID, UapiError, bad_request
from .model import PHONE_CALL_FIELDS, Call, dumps
from .profiles import EndedCall
from .tokens import Context
from .world import Account

log = logging.getLogger(__name__)

Handler = Callable[[Request, Emulator], Awaitable[Response]]

# Collections are limited to 20 entries unless ``count`` says otherwise (Getting Started);
# startIndex is documented up to 5000 on both versions.
DEFAULT_COUNT = 20
MAX_START_INDEX = 5000


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(data), status, headers=headers, media_type="application/json")


def raw_json(body: bytes, status: int = 200) -> Response:
    return Response(body, status, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


def uapi_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        emulator: Emulator = request.app.state.emulator
        try:
            return await handler(request, emulator)
        except UapiError as exc:
            return json_response(exc.body(), exc.status)
        except Exception:
            log.exception("UAPI request %s %s failed", request.method, request.url.path)
            return json_response(
                {
                    "error": {
                        "code": ErrorCode.INTERNAL_SERVER_ERROR,
                        "message": "Internal server error.",
                    }
                },
                500,
            )

    endpoint.__name__ = handler.__name__
    return endpoint


def base_url(request: Request, emulator: Emulator) -> str:
    if emulator.base_url:
        return emulator.base_url
    return f"{request.url.scheme}://{request.url.netloc}"


async def read_json(request: Request) -> Any:
    body = await request.body()
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def not_implemented() -> UapiError:
    return UapiError(501, ErrorCode.REQUEST_NOT_IMPLEMENTED, "The request is not implemented.")


# --------------------------------------------------------------------------- OAuth 2.0


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response(
        {"error": error, "error_description": description},
        status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


async def token(request: Request) -> Response:
    """POST /oauth/token.php, client credentials grant, answered the way the PHP OAuth2
    server VoipNow is built on answers (errors as ``error`` + ``error_description``)."""
    emulator: Emulator = request.app.state.emulator
    if request.method != "POST":
        return _oauth_error(
            "invalid_request",
            "The request method must be POST when requesting an access token",
            405,
        )
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    # type, redirect_uri, scope and state are accepted and ignored, as 4PSA's own clients
    # send them.
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic ") and client_id is None:
        # HTTP Basic client authentication, which the same OAuth2 server also accepts.
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            client_id, client_secret = unquote(user), unquote(password)
        except (binascii.Error, UnicodeDecodeError):
            pass
    grant_type = form.get("grant_type")
    if not grant_type:
        return _oauth_error("invalid_request", "The grant type was not specified in the request")
    if grant_type != "client_credentials":
        return _oauth_error("unsupported_grant_type", f'Grant type "{grant_type}" not supported')
    issued = emulator.issue_token(client_id, client_secret) if client_id and client_secret else None
    if issued is None:
        return _oauth_error("invalid_client", "The client credentials are invalid")
    return json_response(
        # "scope": null is sent on purpose: the PHP OAuth2 server does, and clients must cope.
        {
            "access_token": issued.value,
            "expires_in": issued.lifetime,
            "token_type": "Bearer",
            "scope": None,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def authenticate(request: Request, emulator: Emulator) -> Account:
    value: str | None = None
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        value = auth[7:].strip()
    else:
        query = request.query_params.get("accessRequestToken")
        if query:
            # The docs say the word Bearer precedes the token here too; both forms work.
            value = query[7:].strip() if query.lower().startswith("bearer ") else query.strip()
    account = emulator.token_account(value)
    if account is None:
        raise UapiError(401, ErrorCode.ACCESS_DENIED, "You are not authorized to use this request.")
    return account


def context_of(request: Request, emulator: Emulator) -> Context:
    account = authenticate(request, emulator)
    params = request.path_params
    return emulator.resolve(account, params["userId"], params["extension"])


# --------------------------------------------------------------------------- PhoneCalls


@uapi_endpoint
async def phone_calls(request: Request, emulator: Emulator) -> Response:
    if request.method not in ("GET", "PUT", "DELETE"):
        authenticate(request, emulator)
        # e.g. Create Callback and ConferenceInvite PhoneCalls (POST .../callback, ...)
        raise not_implemented()
    context = context_of(request, emulator)
    call_id: str | None = request.path_params.get("phoneCallId")
    if request.method == "GET":
        return list_phone_calls(request, emulator, context, call_id)
    if request.method == "PUT":
        changed = emulator.update_calls(context, call_id, await read_json(request))
        if not changed:
            return no_content()
        base = base_url(request, emulator)
        user = request.path_params["userId"]
        answers = [
            {
                "id": call.id,
                "extension": ext,
                "link": {"self": f"{base}/uapi/phoneCalls/{user}/{ext}/{call.id}"},
            }
            for call, ext in changed
        ]
        # The spec's table says 200, its example shows 202 Accepted: the example is followed.
        return json_response(answers[0] if call_id is not None else answers, 202)
    if request.method == "DELETE":
        number = request.query_params.get("phoneNumber")
        hung_up = emulator.delete_calls(context, call_id, number or None)
        if not hung_up:
            return no_content()
        return json_response([{"id": i} for i in hung_up])
    raise not_implemented()


@uapi_endpoint
async def create_simple_phone_calls(request: Request, emulator: Emulator) -> Response:
    """POST /uapi/phoneCalls/{userId}/simple: answers ``Array<PhoneCall>`` with the new call."""
    account = authenticate(request, emulator)
    context = emulator.resolve(account, request.path_params["userId"], EXTENSION_SELF)
    query = request.query_params
    call = emulator.create_simple_call(
        context,
        await read_json(request),
        wait_for_pickup=query.get("waitForPickup"),
        call_duration=query.get("callDuration"),
    )
    return json_response([call.to_json(base_url(request, emulator))])


def _paging(request: Request, emulator: Emulator) -> tuple[int, int]:
    """``count`` and ``startIndex`` of a collection request, checked as the version does:
    3.x documents count up to 5000 and is played clamping a larger one to 5000; 5.x refuses
    a count outside 1..4999 with ``count_invalid`` (4PSA's own client caps it at 4999)."""
    profile = emulator.profile
    count = _number_param(request, "count", DEFAULT_COUNT)
    if count is not None and count > profile.max_count and profile.clamps_count:
        count = profile.max_count
    if count is None or not 1 <= count <= profile.max_count:
        raise bad_request(
            ErrorCode.COUNT_INVALID,
            f"Invalid count. It must be a number from 1 to {profile.max_count}.",
        )
    start = _number_param(request, "startIndex", 0)
    if start is None or not 0 <= start <= MAX_START_INDEX:
        raise bad_request(
            ErrorCode.STARTINDEX_INVALID,
            f"Invalid startIndex. It must be a number from 0 to {MAX_START_INDEX}.",
        )
    return count, start


def _number_param(request: Request, name: str, default: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        return None


def collection(emulator: Emulator, body: dict[str, Any]) -> Any:
    """A collection's body as the version shapes it: 5.x wraps it in an array (the v5
    QueueAgents example, ``[ { "entry": [ ... ] } ]``), 3.x answers the object itself."""
    return [body] if emulator.profile.wraps_collections else body


def _head(request: Request, base: str, start: int, count: int, total: int) -> dict[str, Any]:
    head: dict[str, Any] = {"startIndex": start, "itemsPerPage": count, "totalResults": total}
    if start + count < total:
        head["next"] = _page_url(request, base, start + count)
    if start > 0:
        head["prev"] = _page_url(request, base, max(0, start - count))
    return head


def _parse_date(value: str) -> datetime:
    moment = datetime.fromisoformat(value.strip().replace(" ", "+"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_phone_calls(
    request: Request, emulator: Emulator, context: Context, call_id: str | None
) -> Response:
    count, start = _paging(request, emulator)
    wanted = _wanted_fields(request, PHONE_CALL_FIELDS, "PhoneCall")
    descending = _descending(request)
    calls = emulator.visible_calls(context)
    if call_id is not None:
        calls = [c for c in calls if c.id == call_id]
        if not calls:
            return _ended_call(emulator, start, count)
    calls = _filter(request, calls)
    if descending:
        calls.reverse()
    total = len(calls)
    if total == 0:
        return no_content()
    page = calls[start : start + count]
    base = base_url(request, emulator)
    head = _head(request, base, start, count, total)
    if wanted:
        keep = set(wanted) | {"id"}
        entries = [{k: v for k, v in c.to_json(base).items() if k in keep} for c in page]
        return json_response(collection(emulator, {**head, "entry": entries}))
    # The fast path: each call's JSON is cached, so a page is one join.
    body = dumps(head)[:-1] + b',"entry":[' + b",".join(c.to_bytes(base) for c in page) + b"]}"
    if emulator.profile.wraps_collections:
        body = b"[" + body + b"]"
    return raw_json(body)


def _wanted_fields(request: Request, known: frozenset[str], what: str) -> list[str]:
    """The ``fields`` asked for (repeated or comma-separated); ``fields_invalid`` for a name
    the resource does not have."""
    wanted: list[str] = []
    for raw in request.query_params.getlist("fields"):
        wanted.extend(f.strip() for f in raw.split(",") if f.strip())
    if any(f not in known for f in wanted):
        raise bad_request(ErrorCode.FIELDS_INVALID, f"Invalid fields. Unknown {what} field.")
    return wanted


def _descending(request: Request) -> bool:
    """Whether ``sortOrder`` asks for the newest first; ``sortorder_invalid`` for neither."""
    sort = request.query_params.get("sortOrder", "ascending")
    if sort not in ("ascending", "descending", "asc", "desc"):
        raise bad_request(
            ErrorCode.SORTORDER_INVALID, "Invalid sortOrder. It must be ascending or descending."
        )
    return sort.startswith("desc")


def _ended_call(emulator: Emulator, start: int, count: int) -> Response:
    """The lookup of a call that is not (or no longer) live, as the version answers it.

    3.x: 400 ``pc_phonecall_invalid``, the code its pages give for a phoneCallId that
    references no call. 5.x: 200 with ``totalResults`` 0 and no ``entry`` (null fields are
    omitted; a third-party client ends its wait on totalResults 0). The control API can make
    either answer 204 instead (``endedCall``). The emulator does not tell an ended call from
    an id that never was one: a real server keeps no list of ended calls here either."""
    answer = emulator.ended_call
    if answer is EndedCall.NO_CONTENT:
        return no_content()
    if answer is EndedCall.INVALID:
        raise bad_request(
            ErrorCode.PC_PHONECALL_INVALID,
            "Invalid phoneCallId. It must be alphanumeric and reference an existing phone call.",
        )
    return json_response(
        collection(emulator, {"startIndex": start, "itemsPerPage": count, "totalResults": 0})
    )


def _filter(request: Request, calls: list[Call]) -> list[Call]:
    query = request.query_params
    by = query.get("filterBy")
    if by is None or by == "":
        return calls
    if by not in ("id", "published"):
        raise bad_request(
            ErrorCode.FILTERBY_INVALID, "Invalid filterBy. It must be id or published."
        )
    op = query.get("filterOp", "equals")
    value = query.get("filterValue")
    if value is None or value == "":
        raise bad_request(ErrorCode.FILTERVALUE_INVALID, "Invalid filterValue. It is missing.")
    if by == "id":
        return _filter_by_id(calls, op, value)
    return _filter_by_published(calls, op, value)


def _filter_by_id(calls: list[Call], op: str, value: str) -> list[Call]:
    if op == "equals":
        return [c for c in calls if c.id == value]
    if op == "inArray":
        ids = {v.strip() for v in value.split(",")}
        return [c for c in calls if c.id in ids]
    raise bad_request(
        ErrorCode.FILTEROP_INVALID, "Invalid filterOp. For id it must be equals or inArray."
    )


def _filter_by_published(calls: list[Call], op: str, value: str) -> list[Call]:
    try:
        moment = _parse_date(value)
    except ValueError:
        raise bad_request(
            ErrorCode.FILTERVALUE_INVALID, "Invalid filterValue. It must be an ISO 8601 date."
        ) from None
    # Choice: "equals" on published means "published at or after", the useful question
    # ("what came in since ..."); greaterThan and lessThan are strict.
    if op == "equals":
        return [c for c in calls if c.published.replace(microsecond=0) >= moment]
    if op == "greaterThan":
        return [c for c in calls if c.published.replace(microsecond=0) > moment]
    if op == "lessThan":
        return [c for c in calls if c.published.replace(microsecond=0) < moment]
    raise bad_request(
        ErrorCode.FILTEROP_INVALID,
        "Invalid filterOp. For published it must be equals, greaterThan or lessThan.",
    )


def _page_url(request: Request, base: str, start: int) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "startIndex"]
    items.append(("startIndex", str(start)))
    return f"{base}{request.url.path}?{urlencode(items)}"


# --------------------------------------------------------------------------- Extensions


def _single_extension(
    context: Context, allowed: frozenset[ExtensionType], emulator: Emulator
) -> str:
    ext = context.extension
    if ext is None or emulator.world.extensions[ext].type not in allowed:
        raise bad_request(
            ErrorCode.EXTENSION_INVALID,
            "Invalid extension. It cannot be @self and must be of a type this request serves.",
        )
    return ext


def _collection(request: Request, emulator: Emulator, entries: list[dict[str, Any]]) -> Response:
    """A paged collection (count, startIndex, next/prev as List PhoneCalls), shaped as the
    version shapes collections; 204 when there is nothing at all."""
    count, start = _paging(request, emulator)
    if not entries:
        return no_content()
    head = _head(request, base_url(request, emulator), start, count, len(entries))
    return json_response(collection(emulator, {**head, "entry": entries[start : start + count]}))


def _event_type(raw: str | None, emulator: Emulator) -> CallEventType | None:
    """The type segment of a PhoneCallEvents URI; one the version does not have (3.x: 3 and
    4) is refused like an unknown one, with ``pce_type_invalid``."""
    if raw is None:
        return None
    try:
        event_type = CallEventType(int(raw))
    except ValueError:
        event_type = None
    if event_type is None or event_type not in emulator.profile.event_types:
        raise bad_request(ErrorCode.PCE_TYPE_INVALID, emulator.event_type_message())
    return event_type


@uapi_endpoint
async def phone_call_events(request: Request, emulator: Emulator) -> Response:
    context = context_of(request, emulator)
    ext = _single_extension(context, EVENT_EXTENSION_TYPES, emulator)
    event_type = _event_type(request.path_params.get("type"), emulator)
    event_id: str | None = request.path_params.get("eventId")
    base = base_url(request, emulator)
    if request.method == "POST" and event_type is None:
        body = await read_json(request)
        registration = emulator.register_event(context, body if isinstance(body, dict) else {})
        return json_response(registration.to_json(base))
    matching = emulator.registrations_of(ext, event_type, event_id)
    if request.method == "GET":
        matching.sort(key=lambda r: (r.url, r.id))  # the docs: ordered by url
        return _collection(request, emulator, [r.to_json(base) for r in matching])
    if request.method == "PUT" and event_type is not None and event_id is not None:
        if not matching:
            raise bad_request(ErrorCode.PCE_ID_INVALID, "Invalid id. No such PhoneCallEvent.")
        body = await read_json(request)
        spec = body if isinstance(body, dict) else {}
        registration = emulator.register_event(context, spec, existing=matching[0])
        return json_response(registration.to_json(base))
    if request.method == "DELETE":
        if event_id is not None and not matching:
            raise bad_request(ErrorCode.PCE_ID_INVALID, "Invalid id. No such PhoneCallEvent.")
        emulator.unregister_events(matching)
        if not matching:
            return no_content()
        return json_response([{"id": r.id} for r in matching])
    raise not_implemented()


def _agent_entry(
    emulator: Emulator, base: str, user: str, queue: str, agent: str
) -> dict[str, Any]:
    return {
        "agentNumber": agent,
        "status": int(emulator.agent_status_of(queue, agent)),
        "links": {"self": f"{base}/uapi/extensions/{user}/{queue}/queue/agents/{agent}"},
    }


@uapi_endpoint
async def queue_agents(request: Request, emulator: Emulator) -> Response:
    context = context_of(request, emulator)
    queue = _single_extension(context, frozenset({ExtensionType.QUEUE}), emulator)
    base = base_url(request, emulator)
    user = request.path_params["userId"]
    raw_agent: str | None = request.path_params.get("agent")
    agent = emulator.queue_agent(queue, raw_agent) if raw_agent is not None else None
    if request.method == "GET":
        chosen = [agent] if agent else list(emulator.queue_agents(queue))
        chosen.sort(key=lambda a: int(emulator.agent_status_of(queue, a)))  # ordered by status
        entries = [_agent_entry(emulator, base, user, queue, a) for a in chosen]
        return _collection(request, emulator, entries)
    if request.method == "PUT" and agent is not None:
        body = await read_json(request)
        raw = body.get("status") if isinstance(body, dict) else None
        try:
            if isinstance(raw, bool) or raw is None:
                raise ValueError
            status = AgentStatus(int(raw))
        except (TypeError, ValueError):
            # status_invalid: the code of the 3.x Update QueueAgents page.
            raise bad_request(STATUS_INVALID, "Invalid status. It must be 0, 1 or 2.") from None
        emulator.set_agent_status(agent, status, queue)
        # Update QueueAgents returns an array of the agents it changed (3.x page).
        return json_response([_agent_entry(emulator, base, user, queue, agent)])
    raise not_implemented()


@uapi_endpoint
async def presence(request: Request, emulator: Emulator) -> Response:
    context = context_of(request, emulator)
    if request.method != "GET":
        raise not_implemented()
    # List Presence answers a collection, for one extension as for @self (3.x List Presence).
    extensions = [context.extension] if context.extension else sorted(context.account.extensions)
    return _collection(request, emulator, [emulator.presence(e) for e in extensions])


# --------------------------------------------------------------------------- CDR


def _cdr_date(request: Request, name: str, code: ErrorCode) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return _parse_date(raw).replace(microsecond=0)
    except ValueError:
        raise bad_request(code, f"Invalid {name}. It must be an ISO 8601 date.") from None


def _cdr_choice(request: Request, name: str, allowed: set[int], code: ErrorCode) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value not in allowed:
        choices = ", ".join(str(v) for v in sorted(allowed))
        raise bad_request(code, f"Invalid {name}. It must be one of {choices}.")
    return value


def _cdr_number(request: Request, name: str, code: ErrorCode) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    value = raw.strip()
    # An extended extension number (0001*201), a short one, or a public number (+ digits).
    if not value or not all(c.isdigit() or c == "*" for c in value.removeprefix("+")):
        raise bad_request(code, f"Invalid {name}. It must be an extension or a phone number.")
    return value


@uapi_endpoint
async def cdr(request: Request, emulator: Emulator) -> Response:
    """List CDR, ``GET /uapi/cdr/[{ownerId}/]``: the records of ended calls the token's
    account (or ``ownerId``, an account at or below it) may see, paged like every collection,
    ``entry`` keyed by record id. 501 on 3.x, whose docs have no CDR service."""
    if not emulator.profile.has_cdr:
        raise not_implemented()
    account = authenticate(request, emulator)
    if request.method != "GET":
        raise not_implemented()
    owner: str | None = request.path_params.get("ownerId")
    if owner:
        # The userId rules: @me, @viewer, or the id of the account or one below it.
        account = emulator.resolve(account, owner, EXTENSION_SELF).account
    count, start_index = _paging(request, emulator)
    wanted = _wanted_fields(request, RECORD_FIELDS, "record")
    descending = _descending(request)
    records = select_records(emulator.call_records(account), **_cdr_filters(request))
    if descending:
        records.reverse()
    if not records:
        return no_content()
    head = _head(request, base_url(request, emulator), start_index, count, len(records))
    page = records[start_index : start_index + count]
    return json_response(collection(emulator, {**head, "entry": _record_entries(page, wanted)}))


def _cdr_filters(request: Request) -> dict[str, Any]:
    """The filters of a List CDR request, checked, as ``select_records`` arguments."""
    moment = datetime.now(UTC).replace(microsecond=0)
    # Defaults of 4PSA's MCP server: from the first day of the current month until now.
    start = _cdr_date(request, "startDate", ErrorCode.CDR_START_DATE_INVALID) or moment.replace(
        day=1, hour=0, minute=0, second=0
    )
    end = _cdr_date(request, "endDate", ErrorCode.CDR_END_DATE_INVALID) or moment
    save_start = _cdr_date(request, "saveStartDate", ErrorCode.CDR_SAVE_START_DATE_INVALID)
    save_end = _cdr_date(request, "saveEndDate", ErrorCode.CDR_SAVE_END_DATE_INVALID)
    if start > end or (save_start and save_end and save_start > save_end):
        raise bad_request(
            ErrorCode.CDR_INVALID_DATE_PARAMETERS,
            "Invalid date parameters. The start date must not be after the end date.",
        )
    filters: dict[str, Any] = {
        "start": start,
        "end": end,
        "save_start": save_start,
        "save_end": save_end,
        "source": _cdr_number(request, "source", ErrorCode.CDR_SOURCE_INVALID),
        "destination": _cdr_number(request, "destination", ErrorCode.CDR_DESTINATION_INVALID),
        "disposition": _cdr_choice(
            request,
            "disposition",
            {int(d) for d in Disposition},
            ErrorCode.CDR_DISPOSITION_INVALID,
        ),
        "flow": _cdr_choice(request, "flow", {int(f) for f in Flow}, ErrorCode.CDR_FLOW_INVALID),
    }
    by = request.query_params.get("filterBy")
    if by:
        _cdr_filter_by(request, by, filters)
    return filters


def _cdr_filter_by(request: Request, by: str, filters: dict[str, Any]) -> None:
    """Add ``filterBy``/``filterValue`` (source, destination, published, answered) to
    ``filters``; the dates mean "at or after", as filterBy=published of List PhoneCalls."""
    if by not in ("source", "destination", "published", "answered"):
        raise bad_request(
            ErrorCode.FILTERBY_INVALID,
            "Invalid filterBy. It must be source, destination, published or answered.",
        )
    if not request.query_params.get("filterValue"):
        raise bad_request(ErrorCode.FILTERVALUE_INVALID, "Invalid filterValue. It is missing.")
    if by == "source":
        filters["source"] = _cdr_number(
            request, "filterValue", ErrorCode.CDR_INVALID_FILTER_BY_SOURCE
        )
    elif by == "destination":
        filters["destination"] = _cdr_number(
            request, "filterValue", ErrorCode.CDR_INVALID_FILTER_BY_DESTINATION
        )
    elif by == "published":
        since = _cdr_date(request, "filterValue", ErrorCode.CDR_INVALID_FILTER_BY_PUBLISHED)
        filters["start"] = max(filters["start"], since or filters["start"])
    else:
        since = _cdr_date(request, "filterValue", ErrorCode.CDR_INVALID_FILTER_BY_ANSWERED)
        filters["answered_since"] = since


def _record_entries(page: list[CallRecord], wanted: list[str]) -> dict[str, dict[str, Any]]:
    """The page's records keyed by id, as real servers answer List CDR (cdr.py)."""
    if not wanted:
        return {r.id: r.body for r in page}
    keep = set(wanted) | {"id"}
    return {r.id: {k: v for k, v in r.body.items() if k in keep} for r in page}


async def not_implemented_endpoint(request: Request) -> Response:
    return json_response(not_implemented().body(), 501)

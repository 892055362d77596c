"""The static world of the emulator: accounts, extensions, queues and apps read from a scenario.

A scenario is plain JSON (see ``scenarios/demo.json``). This module turns it into frozen
objects and answers the questions the UAPI asks of the account hierarchy: which extensions a
token may see, which user owns an extension, what a short extension number means.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calls.uapi.wire import ExtensionType

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
DEMO_SCENARIO = SCENARIO_DIR / "demo.json"

# Unknown in the docs: how long a queue rings one agent before trying the next. VoipNow
# queues have a configurable "ring timeout"; 20 s is a common PBX default, overridable per
# queue with "ringSeconds".
DEFAULT_QUEUE_RING_SECONDS = 20.0
DEFAULT_TOKEN_LIFETIME = 3600


class ScenarioError(ValueError):
    """The scenario is not usable; the message says which part."""


@dataclass(frozen=True)
class Extension:
    number: str  # extended form yyyy*zzz
    type: ExtensionType
    label: str
    caller_id: str
    user_id: str
    organization_id: str
    pickup_delay: float = 1.0  # phone terminals only: seconds from ringing to answered
    voicemail: bool = False  # whether calls may be sent to this extension's voicemail
    did: str | None = None  # public number routed to the extension (CalledDID)
    agent: str = "Yealink SIP-T46S 66.86.0.15"  # registered phone's user agent (Presence)

    @property
    def short(self) -> str:
        return self.number.split("*", 1)[1]

    @property
    def is_phone(self) -> bool:
        return self.type is ExtensionType.PHONE_TERMINAL


@dataclass(frozen=True)
class User:
    id: str
    name: str
    organization_id: str
    extensions: tuple[str, ...]


@dataclass(frozen=True)
class AgentBreaks:
    """A seeded schedule of breaks each agent of a queue takes: after ``every`` seconds
    online (drawn from [min, max]) the agent leaves the queue (paused or logged out) for
    ``length`` seconds (drawn likewise), then comes back online."""

    every: tuple[float, float]
    length: tuple[float, float]


@dataclass(frozen=True)
class Queue:
    extension: str
    organization_id: str
    agents: tuple[str, ...]
    arrivals_per_minute: float
    talk_seconds: tuple[float, float]
    patience_seconds: tuple[float, float]
    ring_seconds: float = DEFAULT_QUEUE_RING_SECONDS
    pauses: AgentBreaks | None = None  # "agentPauses": QueueAgents status 2, then 1
    logouts: AgentBreaks | None = None  # "agentLogouts": QueueAgents status 0, then 1


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    prefix: str
    users: tuple[str, ...]
    queues: tuple[str, ...]


@dataclass(frozen=True)
class App:
    client_id: str
    client_secret: str
    account: str
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME


@dataclass(frozen=True)
class Account:
    """An account an app can be registered to, with everything below it."""

    id: str
    kind: str  # "serviceProvider", "organization" or "user"
    name: str
    extensions: frozenset[str]
    user_ids: frozenset[str]
    organization_ids: frozenset[str]


@dataclass(frozen=True)
class World:
    name: str
    seed: int
    speed: float
    service_provider_id: str
    service_provider_name: str
    organizations: Mapping[str, Organization]
    users: Mapping[str, User]
    extensions: Mapping[str, Extension]
    queues: Mapping[str, Queue]
    apps: Mapping[str, App]
    accounts: Mapping[str, Account]
    caller_numbers: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def organization_of(self, extension: str) -> Organization:
        return self.organizations[self.extensions[extension].organization_id]

    def resolve_number(self, number: str, organization_id: str) -> str | None:
        """The extended number of ``number`` (full ``yyyy*zzz`` or short ``zzz`` within the
        organization), or None when no such extension exists."""
        if "*" in number:
            return number if number in self.extensions else None
        prefix = self.organizations[organization_id].prefix
        full = f"{prefix}*{number}"
        return full if full in self.extensions else None

    def queues_of_agent(self, agent: str) -> tuple[str, ...]:
        return tuple(q.extension for q in self.queues.values() if agent in q.agents)


def load_scenario(scenario: Mapping[str, Any] | str | Path | None) -> dict[str, Any]:
    """The scenario as a dict: given as one, read from a JSON file, or the demo."""
    if scenario is None:
        scenario = DEMO_SCENARIO
    if isinstance(scenario, Mapping):
        copy: dict[str, Any] = json.loads(json.dumps(scenario))  # a private deep copy
        return copy
    path = Path(scenario)
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
    return data


def _pair(value: Any, default: tuple[float, float], what: str) -> tuple[float, float]:
    if value is None:
        return default
    try:
        low, high = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError) as exc:
        raise ScenarioError(f"{what} must be [min, max]") from exc
    if low < 0 or high < low:
        raise ScenarioError(f"{what} must be [min, max] with 0 <= min <= max")
    return low, high


def build_world(data: Mapping[str, Any]) -> World:
    """Check the scenario and index it."""
    try:
        sp = data["serviceProvider"]
        sp_id, sp_name = str(sp["id"]), str(sp["name"])
    except (KeyError, TypeError) as exc:
        raise ScenarioError("serviceProvider with id and name is required") from exc
    organizations: dict[str, Organization] = {}
    users: dict[str, User] = {}
    extensions: dict[str, Extension] = {}
    queues: dict[str, Queue] = {}
    for org in data.get("organizations", []):
        org_id, prefix = str(org["id"]), str(org["prefix"])
        user_ids: list[str] = []
        for user in org.get("users", []):
            user_id = str(user["id"])
            numbers: list[str] = []
            for ext in user.get("extensions", []):
                extension = _extension(ext, prefix, user_id, org_id)
                extensions[extension.number] = extension
                numbers.append(extension.number)
            users[user_id] = User(user_id, str(user.get("name", user_id)), org_id, tuple(numbers))
            user_ids.append(user_id)
        queue_numbers: list[str] = []
        for q in org.get("queues", []):
            queue = _queue(q, org_id, extensions)
            queues[queue.extension] = queue
            queue_numbers.append(queue.extension)
        organizations[org_id] = Organization(
            org_id, str(org["name"]), prefix, tuple(user_ids), tuple(queue_numbers)
        )
    accounts = _accounts(sp_id, sp_name, organizations, users, extensions)
    apps = _apps(data, accounts)
    callers = tuple(str(n) for n in data.get("callerNumbers", [])) or ("+14155550100",)
    return World(
        name=str(data.get("name", "scenario")),
        seed=int(data.get("seed", 0)),
        speed=float(data.get("speed", 1.0)),
        service_provider_id=sp_id,
        service_provider_name=sp_name,
        organizations=organizations,
        users=users,
        extensions=extensions,
        queues=queues,
        apps=apps,
        accounts=accounts,
        caller_numbers=callers,
        raw=data,
    )


def _extension(ext: Mapping[str, Any], prefix: str, user_id: str, org_id: str) -> Extension:
    number = str(ext["number"])
    if not number.startswith(prefix + "*"):
        raise ScenarioError(f"extension {number} is not under prefix {prefix}")
    try:
        ext_type = ExtensionType(ext["type"])
    except ValueError as exc:
        raise ScenarioError(f"extension {number}: unknown type {ext['type']}") from exc
    is_phone = ext_type is ExtensionType.PHONE_TERMINAL
    return Extension(
        number=number,
        type=ext_type,
        label=str(ext.get("label", number)),
        caller_id=str(ext.get("callerId", f"{ext.get('label', number)} <{number}>")),
        user_id=user_id,
        organization_id=org_id,
        pickup_delay=float(ext.get("pickupDelay", 1.0)),
        # Assumption: phone terminals have a mailbox unless the scenario says not.
        voicemail=bool(ext.get("voicemail", is_phone)),
        did=ext.get("did"),
        agent=str(ext.get("userAgent", Extension.agent)),
    )


def _queue(q: Mapping[str, Any], org_id: str, extensions: Mapping[str, Extension]) -> Queue:
    number = str(q["extension"])
    if extensions.get(number) is None or extensions[number].type is not ExtensionType.QUEUE:
        raise ScenarioError(f"queue {number} is not a phoneQueue extension")
    agents = tuple(str(a) for a in q.get("agents", []))
    for agent in agents:
        if agent not in extensions or not extensions[agent].is_phone:
            raise ScenarioError(f"queue {number}: agent {agent} is not a phone terminal")
    return Queue(
        extension=number,
        organization_id=org_id,
        agents=agents,
        arrivals_per_minute=float(q.get("arrivalsPerMinute", 0)),
        talk_seconds=_pair(q.get("talkSeconds"), (60.0, 180.0), "talkSeconds"),
        patience_seconds=_pair(q.get("patienceSeconds"), (30.0, 120.0), "patienceSeconds"),
        ring_seconds=float(q.get("ringSeconds", DEFAULT_QUEUE_RING_SECONDS)),
        pauses=_breaks(q.get("agentPauses"), f"queue {number}: agentPauses"),
        logouts=_breaks(q.get("agentLogouts"), f"queue {number}: agentLogouts"),
    )


def _breaks(value: Any, what: str) -> AgentBreaks | None:
    """``{"everySeconds": [min, max], "lengthSeconds": [min, max]}``, or None when absent."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or "everySeconds" not in value:
        raise ScenarioError(f"{what} must be {{everySeconds: [min, max], lengthSeconds: ...}}")
    every = _pair(value.get("everySeconds"), (0.0, 0.0), f"{what}.everySeconds")
    if every[1] <= 0:
        raise ScenarioError(f"{what}.everySeconds must allow a time above 0")
    length = _pair(value.get("lengthSeconds"), (30.0, 120.0), f"{what}.lengthSeconds")
    return AgentBreaks(every=every, length=length)


def _accounts(
    sp_id: str,
    sp_name: str,
    organizations: Mapping[str, Organization],
    users: Mapping[str, User],
    extensions: Mapping[str, Extension],
) -> dict[str, Account]:
    accounts: dict[str, Account] = {
        sp_id: Account(
            sp_id,
            "serviceProvider",
            sp_name,
            frozenset(extensions),
            frozenset(users),
            frozenset(organizations),
        )
    }
    for org in organizations.values():
        org_exts = frozenset(n for u in org.users for n in users[u].extensions)
        accounts[org.id] = Account(
            org.id, "organization", org.name, org_exts, frozenset(org.users), frozenset({org.id})
        )
    for user in users.values():
        accounts[user.id] = Account(
            user.id,
            "user",
            user.name,
            frozenset(user.extensions),
            frozenset({user.id}),
            frozenset({user.organization_id}),
        )
    if len(accounts) != 1 + len(organizations) + len(users):
        raise ScenarioError("account ids (service provider, organizations, users) must be unique")
    return accounts


def _apps(data: Mapping[str, Any], accounts: Mapping[str, Account]) -> dict[str, App]:
    apps: dict[str, App] = {}
    for app in data.get("apps", []):
        account = str(app["account"])
        if account not in accounts:
            raise ScenarioError(f"app {app.get('clientId')}: unknown account {account}")
        apps[str(app["clientId"])] = App(
            str(app["clientId"]),
            str(app["clientSecret"]),
            account,
            int(app.get("tokenLifetime", DEFAULT_TOKEN_LIFETIME)),
        )
    return apps

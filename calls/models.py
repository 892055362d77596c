"""Who supervises what: organizations, their VoipNow extensions, supervisors, wallboards, and the
audit of every barge-in attempt."""

from __future__ import annotations

import re
import secrets
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from calls.uapi.wire import (
    DEFAULT_WAIT_FOR_PICKUP,
    EXTENSION_TYPE_LABELS,
    CallEventType,
    ExtensionType,
)

# "Name <number>", no looser than VoipNow: the Data Types grammar has letters, digits, "<",
# ">", "+" and "*" and no punctuation, and 4PSA's own client checks ^[A-Za-z\s]+<[0-9*+]+>$.
# Spaces only (no tabs or line breaks), and \Z, since $ also matches before a final newline.
CALLER_ID_RE = re.compile(r"^[A-Za-z][A-Za-z ]*<\+?[0-9*]+>\Z")
CALLER_ID_HELP = (
    "Name <number>: a name in letters and spaces, then the number (digits or *, + in front) "
    "in angle brackets, e.g. John Doe <+3334444>"
)
# Control characters (C0, DEL and C1, which hold every line break but two) and the Unicode line
# and paragraph separators: never part of a one-line value people type (a caller ID, a reason).
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
caller_id_validator = RegexValidator(
    CALLER_ID_RE, f"Enter a caller ID of the form {CALLER_ID_HELP}."
)


# The longest a supervisor's phone may ring before VoipNow gives up (seconds): the bound of a
# supervisor's default and of what the barge-in dialog accepts.
MAX_WAIT_FOR_PICKUP = 600


def validate_time_zone(value: str) -> None:
    """Accept an IANA time zone name (``Europe/Bucharest``); raise ValidationError otherwise."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{value!r} is not a time zone name such as Europe/London.") from exc


class Organization(models.Model):
    """A VoipNow Organization account: its calls carry ``ownerId`` = ``voipnow_id``."""

    name = models.CharField(max_length=200, unique=True)
    voipnow_id = models.CharField(
        "VoipNow id",
        max_length=64,
        unique=True,
        help_text="The Organization's account id in VoipNow: the ownerId of its calls.",
    )
    extension_prefix = models.CharField(
        max_length=8,
        unique=True,
        validators=[RegexValidator(r"^\d{3,8}$", "The prefix is the digits before the '*'.")],
        help_text="The digits before the '*' of the Organization's extensions, e.g. 0001.",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="Where the Organization's day begins and ends (an IANA name such as "
        "Europe/Bucharest): the queues' figures for today roll over at its midnight.",
    )
    reason_required = models.BooleanField(
        "reason required",
        default=False,
        help_text="Supervisors must give a reason before they listen, whisper or barge in; "
        "it is kept with the audit row.",
    )
    reasons = models.TextField(
        blank=True,
        help_text="The reasons supervisors choose from, one per line. Empty: they type one.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def reason_choices(self) -> list[str]:
        """The reasons supervisors choose from, in the admin's order; empty: free text."""
        lines = (line.strip() for line in self.reasons.splitlines())
        return list(dict.fromkeys(line for line in lines if line))


EXTENSION_NUMBER_RE = re.compile(r"^(\d{3,8})\*(\d{3,})$")


class Extension(models.Model):
    """A VoipNow extension of an Organization, in the extended format ``yyyy*zzz``."""

    class Type(models.TextChoices):
        PHONE_TERMINAL = (
            ExtensionType.PHONE_TERMINAL,
            EXTENSION_TYPE_LABELS[ExtensionType.PHONE_TERMINAL],
        )
        QUEUE = ExtensionType.QUEUE, EXTENSION_TYPE_LABELS[ExtensionType.QUEUE]
        IVR = ExtensionType.IVR, EXTENSION_TYPE_LABELS[ExtensionType.IVR]
        VOICEMAIL_CENTER = (
            ExtensionType.VOICEMAIL_CENTER,
            EXTENSION_TYPE_LABELS[ExtensionType.VOICEMAIL_CENTER],
        )
        CONFERENCE = ExtensionType.CONFERENCE, EXTENSION_TYPE_LABELS[ExtensionType.CONFERENCE]
        CALLBACK = ExtensionType.CALLBACK, EXTENSION_TYPE_LABELS[ExtensionType.CALLBACK]
        CALLING_CARD = ExtensionType.CALLING_CARD, EXTENSION_TYPE_LABELS[ExtensionType.CALLING_CARD]
        INTERCOM = ExtensionType.INTERCOM, EXTENSION_TYPE_LABELS[ExtensionType.INTERCOM]
        QUEUE_LOGIN_CENTER = (
            ExtensionType.QUEUE_LOGIN_CENTER,
            EXTENSION_TYPE_LABELS[ExtensionType.QUEUE_LOGIN_CENTER],
        )

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="extensions"
    )
    number = models.CharField(
        max_length=24,
        unique=True,
        validators=[
            RegexValidator(EXTENSION_NUMBER_RE, "Enter the number as yyyy*zzz, e.g. 0001*024.")
        ],
    )
    type = models.CharField("VoipNow type", max_length=16, choices=Type.choices)
    label = models.CharField(max_length=200, blank=True, help_text="A name people recognize.")
    caller_id = models.CharField(
        "caller ID",
        max_length=200,
        blank=True,
        validators=[caller_id_validator],
        help_text="The extension's caller ID in VoipNow, shown as the default when barging in.",
    )
    service_level_seconds = models.PositiveIntegerField(
        "service level threshold (s)",
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Queues: a call answered within this many seconds of arriving counts "
        "towards the service level.",
    )
    long_wait_seconds = models.PositiveIntegerField(
        "long wait alert after (s)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(86400)],
        help_text="Queues: supervisors are alerted when a caller has waited this long. "
        "Empty: no alert.",
    )

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.label}".strip()

    def clean(self) -> None:
        match = EXTENSION_NUMBER_RE.match(self.number or "")
        if match and self.organization_id is not None:
            prefix = self.organization.extension_prefix
            if match.group(1) != prefix:
                raise ValidationError(
                    {"number": f"Extensions of {self.organization} start with {prefix}*."}
                )

    @property
    def is_phone_terminal(self) -> bool:
        return self.type == self.Type.PHONE_TERMINAL


class Supervisor(models.Model):
    """A user who watches an Organization's calls and may barge in from their own phones."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="supervisor"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="supervisors"
    )
    phones = models.ManyToManyField(
        Extension,
        blank=True,
        related_name="supervisors",
        limit_choices_to={"type": Extension.Type.PHONE_TERMINAL},
        help_text="Phone Terminals of the same Organization this supervisor may barge in from.",
    )
    default_caller_id = models.CharField(
        "default caller ID",
        max_length=200,
        blank=True,
        validators=[caller_id_validator],
        help_text="Prefilled when barging in. Empty: VoipNow uses the phone's own caller ID.",
    )
    default_wait_for_pickup = models.PositiveIntegerField(
        "default wait for pickup (s)",
        default=DEFAULT_WAIT_FOR_PICKUP,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WAIT_FOR_PICKUP)],
    )

    class Meta:
        ordering = ["user__username"]
        # One right per mode; the audit is read with BargeInAttempt's own view permission.
        permissions = [
            ("listen", "Can listen to live calls"),
            ("whisper", "Can whisper to the agent on live calls"),
            ("barge_in", "Can barge in on live calls"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.organization})"


class Wallboard(models.Model):
    """A read-only screen of an Organization's queues, reached by an unguessable token."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="wallboards"
    )
    name = models.CharField(max_length=200)
    token = models.CharField(
        max_length=64, unique=True, default=secrets.token_urlsafe, editable=False
    )
    queues = models.ManyToManyField(
        Extension,
        blank=True,
        limit_choices_to={"type": Extension.Type.QUEUE},
        help_text="Queues shown; none means all of the Organization's queues.",
    )
    enabled = models.BooleanField(
        default=True, help_text="Off: its screens are disconnected and told it was revoked."
    )
    show_calls = models.BooleanField(
        "list calls",
        default=False,
        help_text="List the calls of its queues too, callers' numbers masked (+4420••••8750).",
    )
    wait_amber = models.PositiveIntegerField(
        "longest wait amber from (s)", default=30, validators=[MinValueValidator(1)]
    )
    wait_red = models.PositiveIntegerField(
        "longest wait red from (s)", default=60, validators=[MinValueValidator(1)]
    )
    service_level_amber = models.PositiveSmallIntegerField(
        "service level amber under (%)", default=80, validators=[MaxValueValidator(100)]
    )
    service_level_red = models.PositiveSmallIntegerField(
        "service level red under (%)", default=60, validators=[MaxValueValidator(100)]
    )
    chime = models.BooleanField(
        default=False,
        help_text="Sound a chime when a queue turns red (the TV's browser must allow sound "
        "without a click, e.g. Chromium's --autoplay-policy=no-user-gesture-required).",
    )

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.wait_red < self.wait_amber:
            errors["wait_red"] = "Red starts at or after amber."
        if self.service_level_red > self.service_level_amber:
            errors["service_level_red"] = "Red is at or below amber."
        if errors:
            raise ValidationError(errors)


class ClippedFields:
    """For models written from outside input: values cut to their fields' ``max_length``."""

    @classmethod
    def clipped(cls, **values: str) -> dict[str, str]:
        """``values`` cut to their fields' ``max_length``: a row keeps what fits of any input
        rather than be lost."""
        meta = cls._meta  # type: ignore[attr-defined]  # mixed into models only
        out = {}
        for name, value in values.items():
            limit = getattr(meta.get_field(name), "max_length", None)
            out[name] = value[:limit] if limit else value
        return out


class EventRegistration(ClippedFields, models.Model):
    """Whether VoipNow sends one type of Call Event of an extension to Callboard's hook, as the
    watcher last found it. Written by the watcher; admins and ``/healthz`` read it."""

    class Type(models.IntegerChoices):
        DIAL_IN = CallEventType.DIAL_IN, "Dial-In"
        DIAL_OUT = CallEventType.DIAL_OUT, "Dial-Out"
        HANGUP = CallEventType.HANGUP, "Hangup"
        ANSWER_INCOMING = CallEventType.ANSWER_INCOMING, "Answer (incoming)"
        ANSWER_OUTGOING = CallEventType.ANSWER_OUTGOING, "Answer (outgoing)"

    class State(models.TextChoices):
        REGISTERED = "registered", "Registered"
        REFUSED = "refused", "Refused by VoipNow"
        FAILED = "failed", "Not registered: VoipNow unavailable"

    extension = models.ForeignKey(
        Extension, on_delete=models.CASCADE, related_name="event_registrations"
    )
    type = models.PositiveSmallIntegerField(choices=Type.choices)
    state = models.CharField(max_length=12, choices=State.choices)
    voipnow_id = models.CharField("VoipNow id", max_length=255, blank=True)
    code = models.CharField("UAPI code", max_length=64, blank=True)
    message = models.CharField(max_length=500, blank=True)
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["extension__number", "type"]
        constraints = [
            models.UniqueConstraint(fields=["extension", "type"], name="one_registration_per_type")
        ]

    def __str__(self) -> str:
        return f"{self.extension.number} {self.get_type_display()}: {self.state}"


class BargeInAttempt(ClippedFields, models.Model):
    """One row per attempt, accepted or refused: the audit admins read."""

    class Mode(models.TextChoices):
        BARGE = "barge", "Barge in"
        WHISPER = "whisper", "Whisper"
        LISTEN = "listen", "Listen"

    class Outcome(models.TextChoices):
        PENDING = "pending", "Sent, no answer yet"
        ACCEPTED = "accepted", "Accepted by VoipNow"
        REFUSED = "refused", "Refused by Callboard"
        REJECTED = "rejected", "Rejected by VoipNow"
        UNAVAILABLE = "unavailable", "VoipNow unavailable"
        UNCERTAIN = "uncertain", "Sent, answer lost: the phone may have rung"

    class Left(models.TextChoices):
        CANCELLED = "cancelled", "Cancelled while ringing"
        LEFT = "left", "Left the call"
        HUNG_UP = "hung_up", "Hung up the phone"
        CALL_ENDED = "call_ended", "The call ended"
        NOT_ANSWERED = "not_answered", "Phone not picked up"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150)
    organization = models.ForeignKey(
        Organization, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    phone_call_id = models.CharField(max_length=64, db_index=True)
    phone_call_view_id = models.CharField(max_length=16, blank=True)
    target_extension = models.CharField(
        max_length=24, blank=True, help_text="The extension of the URI: the leg barged in on."
    )
    send_call_to = models.CharField(max_length=24, blank=True)
    caller_id = models.CharField("caller ID", max_length=200, blank=True)
    wait_for_pickup = models.CharField(max_length=16, blank=True)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.BARGE)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.PENDING)
    http_status = models.PositiveSmallIntegerField(null=True, help_text="What Callboard answered.")
    uapi_code = models.CharField("UAPI code", max_length=64, blank=True)
    message = models.CharField(max_length=500, blank=True)
    latency_ms = models.PositiveIntegerField(
        null=True, help_text="Time VoipNow took to answer the PUT."
    )
    reason = models.CharField(max_length=500, blank=True, help_text="Why, as the supervisor said.")
    address = models.GenericIPAddressField(
        null=True, blank=True, help_text="The address the request came from."
    )
    joined_at = models.DateTimeField(
        null=True, blank=True, help_text="When the supervisor's phone joined the call."
    )
    left_at = models.DateTimeField(
        null=True, blank=True, help_text="When the supervisor's leg ended."
    )
    left_how = models.CharField(max_length=12, choices=Left.choices, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["user", "phone_call_id", "-at"])]

    def __str__(self) -> str:
        return f"{self.username} {self.mode} {self.phone_call_id} {self.outcome}"


class QueueCall(models.Model):
    """One call's life in a queue, as the watcher saw it (or VoipNow's CDR told, for a time
    Callboard was down): the history the day's figures are computed from. One row per call,
    written by its VoipNow id, so a second watcher or a restart never counts it twice."""

    class Outcome(models.TextChoices):
        WAITING = "waiting", "Waiting"
        ANSWERED = "answered", "Answered"
        ABANDONED = "abandoned", "Abandoned"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="queue_calls"
    )
    queue = models.ForeignKey(Extension, on_delete=models.CASCADE, related_name="queue_calls")
    phone_call_id = models.CharField("VoipNow call id", max_length=64, unique=True)
    caller = models.CharField(max_length=200, blank=True)
    arrived = models.DateTimeField()
    answered = models.DateTimeField(null=True, blank=True)
    agent = models.CharField(
        max_length=24, blank=True, help_text="The extension whose leg answered the call."
    )
    ended = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.WAITING)
    wait_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="From arriving to being answered, or to hanging up."
    )
    talk_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="From being answered to the end of the call."
    )

    class Meta:
        ordering = ["-arrived"]
        indexes = [
            models.Index(fields=["queue", "arrived"]),
            # Retention deletes by age across queues.
            models.Index(fields=["arrived"]),
        ]

    def __str__(self) -> str:
        return f"{self.queue.number} {self.phone_call_id} {self.outcome}"

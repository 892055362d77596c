from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import segno
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django import forms
from django.conf import settings
from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string

from .live import DIRECTORY_CHANGED, WATCHER_CHANNEL, wallboard_group
from .models import (
    BargeInAttempt,
    EventRegistration,
    Extension,
    Organization,
    QueueCall,
    Supervisor,
    Wallboard,
)

log = logging.getLogger(__name__)

# django-stubs makes the admin and form classes generic in their model; Django's own classes
# take no parameters at run time, so the parameters exist for the type checker only.
if TYPE_CHECKING:
    _ExtensionInline = admin.TabularInline[Extension, Organization]
    _OrganizationForm = forms.ModelForm[Organization]
    _OrganizationAdmin = admin.ModelAdmin[Organization]
    _ExtensionForm = forms.ModelForm[Extension]
    _ExtensionAdmin = admin.ModelAdmin[Extension]
    _QueueCallAdmin = admin.ModelAdmin[QueueCall]
    _EventRegistrationInline = admin.TabularInline[EventRegistration, Extension]
    _EventRegistrationAdmin = admin.ModelAdmin[EventRegistration]
    _SupervisorForm = forms.ModelForm[Supervisor]
    _SupervisorAdmin = admin.ModelAdmin[Supervisor]
    _WallboardAdmin = admin.ModelAdmin[Wallboard]
    _BargeInAttemptAdmin = admin.ModelAdmin[BargeInAttempt]
else:
    _ExtensionInline = admin.TabularInline
    _OrganizationForm = forms.ModelForm
    _OrganizationAdmin = admin.ModelAdmin
    _ExtensionForm = forms.ModelForm
    _ExtensionAdmin = admin.ModelAdmin
    _QueueCallAdmin = admin.ModelAdmin
    _EventRegistrationInline = admin.TabularInline
    _EventRegistrationAdmin = admin.ModelAdmin
    _SupervisorForm = forms.ModelForm
    _SupervisorAdmin = admin.ModelAdmin
    _WallboardAdmin = admin.ModelAdmin
    _BargeInAttemptAdmin = admin.ModelAdmin


class ExtensionForm(_ExtensionForm):
    """Left empty, the service level threshold is the default (it matters for queues only);
    a long-wait alert is for queues only."""

    class Meta:
        model = Extension
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "service_level_seconds" in self.fields:
            self.fields["service_level_seconds"].required = False

    def clean_service_level_seconds(self) -> int:
        value = self.cleaned_data.get("service_level_seconds")
        default: int = Extension._meta.get_field("service_level_seconds").get_default()
        return default if value is None else int(value)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("type") or (self.instance.type if self.instance.pk else None)
        if data.get("long_wait_seconds") is not None and kind != Extension.Type.QUEUE:
            self.add_error("long_wait_seconds", "Only a queue's callers wait: leave it empty.")
        return data


class OrganizationForm(_OrganizationForm):
    """Left empty, the time zone is UTC."""

    class Meta:
        model = Organization
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].required = False

    def clean_time_zone(self) -> str:
        value: str = self.cleaned_data.get("time_zone") or "UTC"
        return value


class ExtensionInline(_ExtensionInline):
    model = Extension
    form = ExtensionForm
    extra = 0
    fields = ("number", "type", "label", "caller_id", "service_level_seconds", "long_wait_seconds")


class ReadOnlyAdmin:
    """For what Callboard writes and admins read (the audit, the call history, the event
    registrations): no adding or changing in the admin, and no deleting unless ``deletable``."""

    deletable = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed: bool = self.deletable and super().has_delete_permission(  # type: ignore[misc]
            request, obj
        )
        return allowed


@admin.register(Organization)
class OrganizationAdmin(_OrganizationAdmin):
    form = OrganizationForm
    list_display = ("name", "voipnow_id", "extension_prefix", "time_zone")
    search_fields = ("name", "voipnow_id", "extension_prefix")
    inlines = [ExtensionInline]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        tell_watcher()


class EventRegistrationInline(_EventRegistrationInline):
    """Which Call Events VoipNow sends for this extension, as the watcher last found them."""

    model = EventRegistration
    extra = 0
    fields = ("type", "state", "voipnow_id", "code", "message", "checked_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Extension | None = None) -> bool:
        return False


@admin.register(Extension)
class ExtensionAdmin(_ExtensionAdmin):
    form = ExtensionForm
    list_display = ("number", "label", "type", "organization", "caller_id")
    list_filter = ("organization", "type")
    search_fields = ("number", "label")
    fieldsets = (
        (None, {"fields": ("organization", "number", "type", "label", "caller_id")}),
        (
            "Queue",
            {
                "fields": ("service_level_seconds", "long_wait_seconds"),
                "description": "For queues only.",
            },
        ),
    )

    def get_fieldsets(self, request: HttpRequest, obj: Extension | None = None) -> Any:
        # A saved extension that is not a queue has no queue settings to show.
        if obj is not None and obj.type != Extension.Type.QUEUE:
            return self.fieldsets[:1]
        return self.fieldsets

    def get_inlines(self, request: HttpRequest, obj: Extension | None) -> list[type[Any]]:
        # A new extension has no registrations yet; the watcher makes them.
        return [EventRegistrationInline] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Extension, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        tell_watcher()  # labels and thresholds reach the rows at once


@admin.register(EventRegistration)
class EventRegistrationAdmin(ReadOnlyAdmin, _EventRegistrationAdmin):
    """Written by the watcher; here to be read (and cleared)."""

    deletable = True

    list_display = ("extension", "type", "state", "code", "message", "checked_at")
    list_filter = ("state", "type", "extension__organization")
    search_fields = ("extension__number", "code")


class SupervisorForm(_SupervisorForm):
    class Meta:
        model = Supervisor
        fields = ("user", "organization", "phones", "default_caller_id", "default_wait_for_pickup")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        organization = data.get("organization")
        for phone in data.get("phones") or []:
            if not phone.is_phone_terminal:
                self.add_error("phones", f"{phone.number} is not a Phone Terminal extension.")
            elif organization is not None and phone.organization_id != organization.pk:
                self.add_error("phones", f"{phone.number} is not an extension of {organization}.")
        return data


@admin.register(Supervisor)
class SupervisorAdmin(_SupervisorAdmin):
    form = SupervisorForm
    list_display = ("user", "organization", "phone_numbers", "default_caller_id")
    list_filter = ("organization",)
    filter_horizontal = ("phones",)
    search_fields = ("user__username",)

    @admin.display(description="phones")
    def phone_numbers(self, obj: Supervisor) -> str:
        return ", ".join(p.number for p in obj.phones.all())


def tell_watcher() -> None:
    """Once the transaction commits, tell the watcher to read its directory again (labels, a
    queue's long-wait threshold), so screens show the change without waiting for the next
    periodic read. Never raises: the watcher reads it within DIRECTORY_EVERY anyway."""

    def send() -> None:
        try:
            async_to_sync(get_channel_layer().send)(WATCHER_CHANNEL, dict(DIRECTORY_CHANGED))
        except Exception:  # the layer is down or full: the admin's save stands
            log.warning("could not tell the watcher of a change", exc_info=True)

    transaction.on_commit(send)


def wallboard_address(board: Wallboard) -> str:
    """The wallboard's page as a TV opens it: the public address and the token."""
    return f"{settings.CALLBOARD_PUBLIC_URL}/wallboard/{board.token}/"


def tell_screens(boards: Iterable[Wallboard], *, deleted: bool = False) -> None:
    """Once the transaction commits, tell each wallboard's open screens it changed (screens on
    a token that no longer works close with "revoked", the others reload), and the watcher to
    read again what it watches (a wallboard may list calls now). Never raises: screens that
    miss it keep running until their next reconnect."""
    changes = [
        (
            b.pk,
            {"type": "wallboard.changed", "token": b.token, "enabled": b.enabled and not deleted},
        )
        for b in boards
    ]

    def send() -> None:
        layer = get_channel_layer()
        try:
            for pk, change in changes:
                async_to_sync(layer.group_send)(wallboard_group(pk), change)
            async_to_sync(layer.send)(WATCHER_CHANNEL, dict(DIRECTORY_CHANGED))
        except Exception:  # the layer is down or full: the admin's save stands
            log.warning("could not tell wallboard screens of a change", exc_info=True)

    transaction.on_commit(send)


@admin.register(Wallboard)
class WallboardAdmin(_WallboardAdmin):
    list_display = ("name", "organization", "enabled", "show_calls", "address")
    list_filter = ("organization", "enabled")
    filter_horizontal = ("queues",)
    readonly_fields = ("address", "qr_code")
    actions = ("rotate_token", "revoke")
    fieldsets = (
        (None, {"fields": ("name", "organization", "queues", "enabled")}),
        (
            "On screen",
            {
                "fields": (
                    "show_calls",
                    ("wait_amber", "wait_red"),
                    ("service_level_amber", "service_level_red"),
                    "chime",
                )
            },
        ),
        ("Address", {"fields": ("address", "qr_code")}),
    )

    @admin.display(description="address")
    def address(self, obj: Wallboard) -> str:
        return wallboard_address(obj) if obj.pk else "(saved first)"

    @admin.display(description="QR code")
    def qr_code(self, obj: Wallboard) -> str:
        if not obj.pk:
            return "(saved first)"
        url = wallboard_address(obj)
        # segno writes the SVG and its data URI; the template only places it.
        qr = segno.make(url, error="m").svg_data_uri(scale=4, border=2)
        return render_to_string("admin/calls/wallboard/qr.html", {"url": url, "qr": qr})

    def save_model(self, request: HttpRequest, obj: Wallboard, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        tell_screens([obj])

    def delete_model(self, request: HttpRequest, obj: Wallboard) -> None:
        tell_screens([Wallboard(pk=obj.pk, token=obj.token)], deleted=True)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Wallboard]) -> None:
        tell_screens(list(queryset), deleted=True)
        super().delete_queryset(request, queryset)

    @admin.action(description="Rotate the token (screens on the old address stop)")
    def rotate_token(self, request: HttpRequest, queryset: QuerySet[Wallboard]) -> None:
        boards = list(queryset)
        for board in boards:
            board.token = secrets.token_urlsafe()
            board.save(update_fields=["token"])
        tell_screens(boards)
        self.message_user(request, f"{len(boards)} wallboard(s) have a new address.")

    @admin.action(description="Revoke (disable; screens stop at once)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Wallboard]) -> None:
        boards = list(queryset)
        queryset.update(enabled=False)
        for board in boards:
            board.enabled = False
        tell_screens(boards)
        self.message_user(request, f"{len(boards)} wallboard(s) revoked.")


@admin.register(BargeInAttempt)
class BargeInAttemptAdmin(ReadOnlyAdmin, _BargeInAttemptAdmin):
    """Read-only: an audit that can be edited is no audit."""

    list_display = (
        "at",
        "username",
        "organization",
        "mode",
        "phone_call_id",
        "phone_call_view_id",
        "send_call_to",
        "outcome",
        "http_status",
        "uapi_code",
        "latency_ms",
    )
    list_filter = ("outcome", "mode", "organization")
    search_fields = ("username", "phone_call_id", "send_call_to", "uapi_code")
    date_hierarchy = "at"


@admin.register(QueueCall)
class QueueCallAdmin(ReadOnlyAdmin, _QueueCallAdmin):
    """Read-only: the history the figures are computed from, as the watcher recorded it."""

    list_display = (
        "arrived",
        "queue",
        "caller",
        "outcome",
        "agent",
        "wait_seconds",
        "talk_seconds",
        "ended",
    )
    list_filter = ("outcome", "organization", "queue")
    search_fields = ("phone_call_id", "caller", "agent", "queue__number")
    date_hierarchy = "arrived"
    list_select_related = ("queue",)

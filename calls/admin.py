from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from .models import (
    BargeInAttempt,
    EventRegistration,
    Extension,
    Organization,
    QueueCall,
    Supervisor,
    Wallboard,
)

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
    """Left empty, the service level threshold is the default (it matters for queues only)."""

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
    fields = ("number", "type", "label", "caller_id", "service_level_seconds")


@admin.register(Organization)
class OrganizationAdmin(_OrganizationAdmin):
    form = OrganizationForm
    list_display = ("name", "voipnow_id", "extension_prefix", "time_zone")
    search_fields = ("name", "voipnow_id", "extension_prefix")
    inlines = [ExtensionInline]


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

    def get_inlines(self, request: HttpRequest, obj: Extension | None) -> list[type[Any]]:
        # A new extension has no registrations yet; the watcher makes them.
        return [EventRegistrationInline] if obj is not None else []


@admin.register(EventRegistration)
class EventRegistrationAdmin(_EventRegistrationAdmin):
    """Written by the watcher; here to be read."""

    list_display = ("extension", "type", "state", "code", "message", "checked_at")
    list_filter = ("state", "type", "extension__organization")
    search_fields = ("extension__number", "code")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: EventRegistration | None = None
    ) -> bool:
        return False


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


@admin.register(Wallboard)
class WallboardAdmin(_WallboardAdmin):
    list_display = ("name", "organization", "enabled", "url")
    list_filter = ("organization", "enabled")
    filter_horizontal = ("queues",)
    readonly_fields = ("url",)

    @admin.display(description="address")
    def url(self, obj: Wallboard) -> str:
        return f"/wallboard/{obj.token}/" if obj.pk else "(saved first)"


@admin.register(BargeInAttempt)
class BargeInAttemptAdmin(_BargeInAttemptAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: BargeInAttempt | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: BargeInAttempt | None = None
    ) -> bool:
        return False


@admin.register(QueueCall)
class QueueCallAdmin(_QueueCallAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: QueueCall | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: QueueCall | None = None) -> bool:
        return False

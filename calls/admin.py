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
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, Permission, User
from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.template.loader import render_to_string

from .live import DIRECTORY_CHANGED, WATCHER_CHANNEL, wallboard_group
from .models import (
    CONTROL_RE,
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
    _UserAdmin = DjangoUserAdmin[User]
    _GroupAdmin = admin.ModelAdmin[Group]
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
    _UserAdmin = DjangoUserAdmin
    _GroupAdmin = DjangoGroupAdmin


# ---- Who administers what -----------------------------------------------------------------
#
# A superuser administers every organization. Any other staff user administers exactly one:
# the organization their Supervisor row ties them to (an organization admin is a supervisor
# of that organization with is_staff and the admin permissions they need). A staff user who
# is neither superuser nor supervisor administers no organization and sees no organization's
# rows. Within their organization, Django's model permissions still decide what they may
# view, add, change and delete.
#
# Every admin below takes OrganizationScoped, which holds the rule in one place: the lists,
# the objects reached by URL (another organization's answer 404, as a missing one does), the
# choices offered in forms (a foreign key or many-to-many lists what the related model's
# admin lets this user see) and the list filters. docs/security.md ("Who gets in") states
# the rule and names its tests (tests/calls/test_admin_organizations.py).


def administered_organization(request: HttpRequest) -> Organization | None:
    """The organization a non-superuser administers: the one they supervise, or None."""
    cached: tuple[Organization | None] | None = getattr(request, "_administered", None)
    if cached is None:
        supervisor = (
            Supervisor.objects.select_related("organization")
            .filter(user_id=request.user.pk or 0)
            .first()
        )
        cached = (supervisor.organization if supervisor else None,)
        request._administered = cached  # type: ignore[attr-defined]
    return cached[0]


def sees_everything(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


class OrganizationScoped:
    """Limits a ModelAdmin (or inline) to the organization its user administers.

    ``organization_path`` is the lookup from the model to its Organization ("pk" for the
    Organization itself). Superusers see every row."""

    organization_path = "organization"

    def scope(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if sees_everything(request):
            return queryset
        organization = administered_organization(request)
        if organization is None:
            return queryset.none()
        return queryset.filter(**{self.organization_path: organization.pk})

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        return self.scope(request, queryset)

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        # Django's admin answers a missing object with a redirect to the index; here a missing
        # object and another organization's answer alike, 404, so neither tells the other.
        obj = super().get_object(request, object_id, from_field)  # type: ignore[misc]
        if obj is None:
            raise Http404("No such object.")
        return obj

    def related_choices(
        self, db_field: models.Field[Any, Any], request: HttpRequest
    ) -> QuerySet[Any] | None:
        """What a relation may point at: the rows the related model's admin shows this user.
        None leaves Django's default (superusers, or a model with no scoped admin)."""
        if sees_everything(request):
            return None
        related = db_field.related_model
        model_admin = admin.site._registry.get(related)  # type: ignore[arg-type]
        if isinstance(model_admin, OrganizationScoped):
            choices: QuerySet[Any] = model_admin.get_queryset(request)
            return choices
        return None

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> Any:
        choices = None if "queryset" in kwargs else self.related_choices(db_field, request)
        if choices is not None:
            kwargs["queryset"] = choices
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
        if choices is not None and db_field.related_model is Organization and field is not None:
            # Their one organization, chosen already.
            field.empty_label = None
        return field

    def formfield_for_manytomany(
        self, db_field: models.ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> Any:
        choices = None if "queryset" in kwargs else self.related_choices(db_field, request)
        if choices is not None:
            kwargs["queryset"] = choices
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]

    def get_list_filter(self, request: HttpRequest) -> Any:
        # A relation's filter lists every related row (every organization, every queue):
        # for an organization admin it lists only those their rows point at.
        filters = super().get_list_filter(request)  # type: ignore[misc]
        if sees_everything(request):
            return filters
        model = self.model  # type: ignore[attr-defined]
        scoped = []
        for entry in filters:
            if isinstance(entry, str) and get_fields_from_path(model, entry)[-1].is_relation:
                scoped.append((entry, admin.RelatedOnlyFieldListFilter))
            else:
                scoped.append(entry)
        return scoped


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
    """Left empty, the time zone is UTC. Each reason is a line a supervisor can pick."""

    class Meta:
        model = Organization
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].required = False

    def clean_time_zone(self) -> str:
        value: str = self.cleaned_data.get("time_zone") or "UTC"
        return value

    def clean_reasons(self) -> str:
        value: str = self.cleaned_data.get("reasons") or ""
        limit = BargeInAttempt._meta.get_field("reason").max_length or 0
        for line in value.splitlines():
            if CONTROL_RE.search(line):
                raise forms.ValidationError(
                    "A reason is one line of text, without tabs or control characters."
                )
            if len(line.strip()) > limit:
                raise forms.ValidationError(f"A reason is at most {limit} characters.")
        return value


class ExtensionInline(OrganizationScoped, _ExtensionInline):
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
class OrganizationAdmin(OrganizationScoped, _OrganizationAdmin):
    """An organization admin edits their own organization's settings; which VoipNow account
    and extension prefix it is stays the superuser's (changing them would show another
    account's calls), as do adding and deleting organizations."""

    organization_path = "pk"
    form = OrganizationForm
    list_display = ("name", "voipnow_id", "extension_prefix", "time_zone", "reason_required")
    search_fields = ("name", "voipnow_id", "extension_prefix")
    inlines = [ExtensionInline]
    fieldsets = (
        (None, {"fields": ("name", "voipnow_id", "extension_prefix", "time_zone")}),
        (
            "Supervisors' reasons",
            {"fields": ("reason_required", "reasons")},
        ),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Organization | None = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if sees_everything(request) else (*fields, "voipnow_id", "extension_prefix")

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        tell_watcher()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return sees_everything(request) and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Organization | None = None) -> bool:
        return sees_everything(request) and super().has_delete_permission(request, obj)


class EventRegistrationInline(OrganizationScoped, _EventRegistrationInline):
    """Which Call Events VoipNow sends for this extension, as the watcher last found them."""

    organization_path = "extension__organization"
    model = EventRegistration
    extra = 0
    fields = ("type", "state", "voipnow_id", "code", "message", "checked_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Extension | None = None) -> bool:
        return False


@admin.register(Extension)
class ExtensionAdmin(OrganizationScoped, _ExtensionAdmin):
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
class EventRegistrationAdmin(OrganizationScoped, ReadOnlyAdmin, _EventRegistrationAdmin):
    """Written by the watcher; here to be read (and cleared)."""

    organization_path = "extension__organization"
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
class SupervisorAdmin(OrganizationScoped, _SupervisorAdmin):
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
class WallboardAdmin(OrganizationScoped, _WallboardAdmin):
    list_display = ("name", "organization", "enabled", "show_calls", "address")
    list_filter = ("organization", "enabled")
    filter_horizontal = ("queues",)
    readonly_fields = ("address", "qr_code")
    actions = ("rotate_token", "revoke")

    class Media:
        # The QR code's look, from a stylesheet: the policy refuses style attributes.
        css = {"all": ("callboard-admin.css",)}

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
class BargeInAttemptAdmin(OrganizationScoped, ReadOnlyAdmin, _BargeInAttemptAdmin):
    """Read-only: an audit that can be edited is no audit. A row refused before its
    organization was known has none: only superusers see it."""

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
class QueueCallAdmin(OrganizationScoped, ReadOnlyAdmin, _QueueCallAdmin):
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


# ---- Accounts ------------------------------------------------------------------------------
#
# Users belong to an organization through their Supervisor row. An organization admin (with
# the auth permissions) manages the accounts of their organization's supervisors: a user they
# add becomes a supervisor of their organization at once. They never see or change a
# superuser, another staff user (who may hold more than they do) or an account tied to no or
# another organization; they cannot make anyone superuser or staff, nor give a group or a
# permission they do not hold themselves, so no one climbs above the admin who set them up.


def own_permissions(request: HttpRequest) -> QuerySet[Permission]:
    """The permissions the request's user holds, directly or through groups."""
    held = Q(pk__in=[])
    for name in request.user.get_all_permissions():
        app_label, _, codename = name.partition(".")
        held |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(held)


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(OrganizationScoped, _UserAdmin):
    organization_path = "supervisor__organization"

    def scope(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        scoped = super().scope(request, queryset)
        if sees_everything(request):
            return scoped
        return scoped.filter(is_superuser=False).filter(Q(is_staff=False) | Q(pk=request.user.pk))

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if sees_everything(request):
            return fields
        return (*fields, "is_superuser", "is_staff")

    def formfield_for_manytomany(
        self, db_field: models.ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> Any:
        if not sees_everything(request):
            held = own_permissions(request)
            if db_field.name == "user_permissions":
                kwargs["queryset"] = held
            elif db_field.name == "groups":
                beyond = Permission.objects.exclude(pk__in=held.values("pk"))
                kwargs["queryset"] = Group.objects.exclude(permissions__in=beyond)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        organization = administered_organization(request)
        if not change and not sees_everything(request) and organization is not None:
            Supervisor.objects.create(user=obj, organization=organization)

    def has_add_permission(self, request: HttpRequest) -> bool:
        allowed = sees_everything(request) or administered_organization(request) is not None
        return allowed and super().has_add_permission(request)


@admin.register(Group)
class GroupAdmin(OrganizationScoped, _GroupAdmin):
    """Groups span organizations and carry permissions: superusers' alone."""

    def scope(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset if sees_everything(request) else queryset.none()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return sees_everything(request)

    def has_view_permission(self, request: HttpRequest, obj: Group | None = None) -> bool:
        return sees_everything(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return sees_everything(request)

    def has_change_permission(self, request: HttpRequest, obj: Group | None = None) -> bool:
        return sees_everything(request)

    def has_delete_permission(self, request: HttpRequest, obj: Group | None = None) -> bool:
        return sees_everything(request)

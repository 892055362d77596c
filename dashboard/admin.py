"""Login throttling's records in the admin: superusers read them, nobody edits them (the
organization-scoped admins are in calls/admin.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.http import HttpRequest

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin


class LoginRecordAdmin(_ModelAdmin):
    """Who tried to log in, from where, and what came of it: an audit, so read-only, and
    only for superusers, since it spans every organization. A lockout is lifted by deleting
    its attempt (``manage.py axes_reset_username``), which superusers may also do here."""

    date_hierarchy = "attempt_time"
    search_fields = ("username", "ip_address")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.model._meta.fields]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser and self.model is AccessAttempt


@admin.register(AccessAttempt)
class AccessAttemptAdmin(LoginRecordAdmin):
    list_display = ("attempt_time", "username", "ip_address", "failures_since_start", "path_info")
    list_filter = ("path_info",)
    exclude = ("get_data", "post_data")


@admin.register(AccessLog)
class AccessLogAdmin(LoginRecordAdmin):
    list_display = ("attempt_time", "logout_time", "username", "ip_address", "path_info")


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(LoginRecordAdmin):
    list_display = ("attempt_time", "username", "ip_address", "locked_out", "path_info")
    list_filter = ("locked_out",)

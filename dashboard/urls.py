from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.live_calls, name="live_calls"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("calls/<str:call_id>/barge/", views.barge, name="barge"),
    path("calls/<str:call_id>/cancel/", views.cancel_join, name="cancel_join"),
    path("calls/<str:call_id>/leave/", views.leave, name="leave_call"),
    path("wallboard/<str:token>/", views.wallboard, name="wallboard"),
    path("queues/<str:queue>/today.csv", views.queue_today_csv, name="queue_today_csv"),
    path("audit/", views.audit, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit_export"),
    path("admin/", admin.site.urls),
]

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_logged_in

        from dashboard import logins
        from dashboard.access import connect_signals

        user_locked_out.connect(logins.log_lockout, dispatch_uid="callboard-log-lockout")
        user_logged_in.connect(logins.clear_own_failures, dispatch_uid="callboard-clear-failures")

        connect_signals()

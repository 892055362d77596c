"""ASGI entry point: HTTP through Django, websockets through Channels behind login and an
Origin check."""

import os
from collections.abc import Sequence
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from dashboard.bounds import BoundedInput, StaticFiles, bounded  # noqa: E402
from dashboard.hooks import hook_route  # noqa: E402
from dashboard.origins import SameOriginOnly  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402


def build_application(extra_websocket_routes: Sequence[Any] = ()) -> ProtocolTypeRouter:
    """The dashboard's ASGI application; ``extra_websocket_routes`` lets the benchmark mount
    its baseline consumer on the very same stack."""
    return ProtocolTypeRouter(
        {
            "http": URLRouter(
                [
                    hook_route(),
                    # Static files are few and cached by browsers; serving them here keeps one
                    # process enough for a deployment. A fronting proxy may serve STATIC_ROOT.
                    # (django-stubs types the route's target as a view, not an ASGI app.)
                    re_path(r"", StaticFiles(django_asgi_app)),  # type: ignore[arg-type]
                ]
            ),
            "websocket": SameOriginOnly(
                AuthMiddlewareStack(URLRouter([*extra_websocket_routes, *websocket_urlpatterns]))
            ),
        }
    )


# Every request and socket passes the input bounds first (dashboard.bounds).
application: BoundedInput = bounded(build_application())

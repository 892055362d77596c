from django.urls import path, re_path

from . import consumers
from .bounds import unknown_socket

websocket_urlpatterns = [
    path("ws/calls/", consumers.LiveCallsConsumer.as_asgi()),
    path("ws/wallboard/<str:token>/", consumers.WallboardConsumer.as_asgi()),
    # Last: any other path is refused (404, or 403 where the server cannot say 404).
    re_path(r"", unknown_socket),  # type: ignore[arg-type]
]

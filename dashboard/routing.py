from django.conf import settings
from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/calls/", consumers.LiveCallsConsumer.as_asgi()),
    path("ws/wallboard/<str:token>/", consumers.WallboardConsumer.as_asgi()),
]

if settings.CALLBOARD_BENCH_BASELINE:
    # The benchmark's bare group_send fan-out, measured on the same server as the live path;
    # never mounted unless the environment asks for it.
    from bench.baseline_consumer import BaselineConsumer

    websocket_urlpatterns.append(path("ws/bench/baseline/", BaselineConsumer.as_asgi()))

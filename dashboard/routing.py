from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/calls/", consumers.LiveCallsConsumer.as_asgi()),
    path("ws/wallboard/<str:token>/", consumers.WallboardConsumer.as_asgi()),
]

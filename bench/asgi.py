"""What ``make bench`` serves: the dashboard's ASGI application with the baseline consumer
mounted at ``/ws/bench/baseline/``, so both are measured on one server, one layer."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django.setup()

from django.urls import path  # noqa: E402

from bench.baseline_consumer import BaselineConsumer  # noqa: E402
from dashboard.asgi import build_application  # noqa: E402
from dashboard.bounds import bounded  # noqa: E402

application = bounded(build_application([path("ws/bench/baseline/", BaselineConsumer.as_asgi())]))

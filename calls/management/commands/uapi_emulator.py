"""``python manage.py uapi_emulator``: run the VoipNow UAPI emulator (see its README)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from calls.uapi.emulator.server import run
from calls.uapi.emulator.world import DEMO_SCENARIO


class Command(BaseCommand):
    help = "Run the VoipNow UAPI emulator (OAuth, PhoneCalls, Call Events, control API)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scenario", default=str(DEMO_SCENARIO), help="scenario JSON file")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--seed", type=int, default=None, help="override the scenario seed")
        parser.add_argument("--speed", type=float, default=None, help="time factor, 10 = 10x")
        parser.add_argument("--no-traffic", action="store_true", help="no random arrivals")
        parser.add_argument("--access-log", action="store_true", help="log every request")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(
            f"UAPI emulator on http://{options['host']}:{options['port']} "
            f"(scenario {options['scenario']}, traffic {'off' if options['no_traffic'] else 'on'})"
        )
        run(
            scenario=options["scenario"],
            host=options["host"],
            port=options["port"],
            seed=options["seed"],
            speed=options["speed"],
            traffic=not options["no_traffic"],
            access_log=options["access_log"],
        )

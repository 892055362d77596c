"""``python manage.py uapi_emulator``: run the VoipNow UAPI emulator (see its README)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.uapi.emulator import cli


class Command(BaseCommand):
    help = "Run the VoipNow UAPI emulator (OAuth, PhoneCalls, Call Events, control API)."

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            cli.serve(options, announce=self.stdout.write)
        except cli.ServerUnavailable as exc:
            raise CommandError(str(exc)) from exc

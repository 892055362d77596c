"""``python manage.py voipnow_events``: Callboard's Call Event registrations on VoipNow.

Without options it lists them per watched extension; ``--register`` makes every watched
extension send its events to this installation's hook now (the watcher does so by itself);
``--remove`` deletes exactly this installation's registrations, before uninstalling or moving
Callboard, and nobody else's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.call_events import CallEventRegistration, watched_extensions
from calls.connection import uapi_client
from calls.uapi.errors import UapiError
from dashboard.hooks import hook_url


class Command(BaseCommand):
    help = "List, register or remove this installation's Call Event registrations on VoipNow."

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--register", action="store_true", help="register what is missing")
        action.add_argument("--remove", action="store_true", help="delete ours, and only ours")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            asyncio.run(self._main(register=options["register"], remove=options["remove"]))
        except UapiError as exc:
            raise CommandError(f"VoipNow: {exc.message}") from exc

    async def _main(self, *, register: bool, remove: bool) -> None:
        async with uapi_client() as uapi:
            registration = CallEventRegistration(uapi, hook_url())
            if remove:
                removed = await registration.remove_all()
                for number, event in removed:
                    self.stdout.write(f"removed {number} type {event.type} ({event.id})")
                self.stdout.write(f"{len(removed)} registrations removed")
                return
            numbers = await sync_to_async(watched_extensions)()
            for number in numbers:
                if register:
                    for outcome in await registration.reconcile(number):
                        detail = f" {outcome.code}" if outcome.code else ""
                        self.stdout.write(f"{number} type {outcome.type}: {outcome.state}{detail}")
                    continue
                for event in await uapi.list_call_events(extension=number):
                    if registration.is_ours(event):
                        shown = event.url.replace(settings.CALLBOARD_HOOK_SECRET, "<secret>")
                        self.stdout.write(
                            f"{number} type {event.type} {event.id} -> {shown}"
                            f"{'' if event.status == 1 else ' (disabled)'}"
                        )

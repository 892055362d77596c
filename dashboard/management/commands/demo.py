"""``python manage.py demo``: migrate, seed, and run the emulator, the watcher and the dashboard
in one command; Ctrl-C stops everything.

Seeding resets the demo accounts' passwords (``admin``'s included) to ``demo``, so the demo runs
only on a database it created: a SQLite database that is new (no file, or no table) when it
first runs, which it then marks in the file's header (SQLite's ``application_id``), or one that
carries that mark. Anything else, a PostgreSQL ``DATABASE_URL`` or a SQLite database migrated
by hand, is refused before anything is written.

With the embedded defaults the channel layer lives in memory, so the watcher runs inside the
dashboard's process, on daphne's event loop. The emulator is a separate server, as VoipNow is.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from calls.demo_data import PASSWORD, seed
from calls.uapi.emulator.profiles import DEFAULT_VOIPNOW, VERSIONS

# SQLite's application_id of a database the demo created: "CBDm" (0x4342446d).
DEMO_DATABASE_MARK = 0x4342446D


def claim_demo_database() -> None:
    """Make sure the default database is the demo's: mark it when it is new, accept it when
    it bears the mark. Raises CommandError, having written nothing, for any other database."""
    where = settings.DATABASES["default"].get("NAME")
    if connection.vendor != "sqlite":
        raise CommandError(
            f"The demo resets the admin's password, so it runs only on its own SQLite database, "
            f"not on this {connection.vendor} database ({where}). Unset DATABASE_URL to run "
            "the demo."
        )
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA application_id")
        (mark,) = cursor.fetchone()
        if mark == DEMO_DATABASE_MARK:
            return
        if connection.introspection.table_names(cursor):
            raise CommandError(
                f"The demo resets the admin's password, so it runs only on a database it "
                f"created, and {where} was not created by the demo. Point CALLBOARD_VAR_DIR "
                "at an empty directory (or delete that file if it only ever held the demo)."
            )
        cursor.execute(f"PRAGMA application_id = {DEMO_DATABASE_MARK}")


def _wait_for_port(
    host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise CommandError("the emulator exited while starting; see its log above")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise CommandError(f"nothing answered on {host}:{port} after {timeout:.0f}s")


class Command(BaseCommand):
    help = "Run Callboard on its embedded defaults: emulator, watcher and dashboard, seeded."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--emulator-port", type=int, default=8001)
        parser.add_argument(
            "--speed", type=float, default=1.0, help="emulator traffic speed factor"
        )
        parser.add_argument("--no-emulator", action="store_true", help="use UAPI_BASE_URL as it is")
        parser.add_argument(
            "--voipnow",
            type=int,
            choices=VERSIONS,
            default=DEFAULT_VOIPNOW,
            help="VoipNow version the emulator behaves as (see calls/uapi/emulator/README.md)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        claim_demo_database()
        call_command("migrate", interactive=False, verbosity=0)
        boards = seed()
        emulator = None
        try:
            if not options["no_emulator"]:
                emulator = subprocess.Popen(
                    [
                        sys.executable,
                        "manage.py",
                        "uapi_emulator",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(options["emulator_port"]),
                        "--speed",
                        str(options["speed"]),
                        "--voipnow",
                        str(options["voipnow"]),
                    ],
                    cwd=settings.BASE_DIR,
                    # Ctrl-C reaches the whole foreground group; we stop the emulator ourselves.
                    start_new_session=True,
                )
                _wait_for_port("127.0.0.1", options["emulator_port"], 20, emulator)
                if "VOIPNOW_VERSION" not in os.environ:
                    # The dashboard offers what the emulator's version has (no listening on 3).
                    settings.VOIPNOW_VERSION = {3: "3.5", 5: "5.6"}[options["voipnow"]]
            url = f"http://{options['host']}:{options['port']}/"
            self.stdout.write(self.style.SUCCESS(f"\nCallboard is running at {url}"))
            self.stdout.write(
                f"  VoipNow {settings.VOIPNOW_VERSION} (emulator): {settings.UAPI_BASE_URL}"
            )
            self.stdout.write(
                f"  log in as alice (Acme), bob (Globex) or admin; password: {PASSWORD}"
            )
            for name, path in boards.items():
                self.stdout.write(f"  wallboard {name}: {url.rstrip('/')}{path}")
            self.stdout.write("  Ctrl-C stops everything.\n")
            self._serve(options["host"], options["port"])
        finally:
            if emulator is not None and emulator.poll() is None:
                emulator.send_signal(signal.SIGTERM)
                try:
                    emulator.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    emulator.kill()
            self.stdout.write("stopped")

    def _serve(self, host: str, port: int) -> None:
        # daphne.server installs the asyncio reactor on import: import it before twisted.
        from channels.layers import get_channel_layer
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server, twisted_loop
        from twisted.internet import defer, reactor

        from calls.connection import uapi_client
        from calls.live import watch
        from dashboard.asgi import application
        from dashboard.bounds import MAX_SOCKET_MESSAGE
        from dashboard.hooks import hook_url

        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []

        async def run_watcher() -> None:
            # Runs once the event loop does: the UAPI client belongs to that loop.
            await watch(
                stop, uapi=uapi_client(), channel_layer=get_channel_layer(), hook_url=hook_url()
            )

        def start_watcher() -> None:
            tasks.append(twisted_loop.create_task(run_watcher()))

        def stop_watcher() -> defer.Deferred[Any] | None:
            stop.set()
            if tasks:
                return defer.Deferred.fromFuture(
                    asyncio.ensure_future(asyncio.wait(tasks, timeout=5))
                )
            return None

        reactor.callWhenRunning(start_watcher)
        # twisted declares its reactor's methods on a zope interface, without self: mypy reads
        # their arguments shifted by one.
        reactor.addSystemEventTrigger("before", "shutdown", stop_watcher)  # type: ignore[arg-type]
        Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,
            action_logger=None,
            # The page sends nothing: daphne refuses larger messages itself (dashboard.bounds).
            websocket_max_message_size=MAX_SOCKET_MESSAGE,
            websocket_max_frame_size=MAX_SOCKET_MESSAGE,
        ).run()
        # Sockets still open at Ctrl-C leave their tasks on the loop; finish them here rather
        # than let the interpreter collect them half-done at exit.
        pending = asyncio.all_tasks(twisted_loop)
        for task in pending:
            task.cancel()
        if pending:
            twisted_loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        twisted_loop.run_until_complete(twisted_loop.shutdown_asyncgens())
        twisted_loop.close()

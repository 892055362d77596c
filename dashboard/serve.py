"""``python -m dashboard.serve``: daphne, with an access log that keeps secrets out.

It takes daphne's own options (``python -m dashboard.serve -b 0.0.0.0 -p 8000
dashboard.asgi:application``). daphne's access log writes each request's full path to a
stream, and two of Callboard's paths carry credentials (see ``dashboard.redaction``). Here
the same entries go through the ``dashboard.access`` logger instead, redacted, one line each,
into the console log as settings.LOGGING has it; ``-v 0`` turns them off as in daphne.
"""

from __future__ import annotations

import logging
from typing import Any

from daphne.access import AccessLogGenerator
from daphne.cli import CommandLineInterface
from daphne.server import Server

from dashboard.redaction import one_line, redact

log = logging.getLogger("dashboard.access")


class RedactedAccessLog(AccessLogGenerator):  # type: ignore[misc]  # daphne ships no types
    """daphne's access entries (HTTP requests, websocket connects and closes) as log records
    with secrets redacted; the time comes from the log's format."""

    def __init__(self) -> None:
        super().__init__(stream=None)

    def write_entry(
        self,
        host: str | None,
        date: Any,
        request: str,
        status: int | None = None,
        length: int | None = None,
        ident: str | None = None,
        user: str | None = None,
    ) -> None:
        log.info(
            '%s "%s" %s %s', host or "-", one_line(redact(request)), status or "-", length or "-"
        )


class RedactingServer(Server):  # type: ignore[misc]
    """daphne's server with ``RedactedAccessLog`` wherever daphne would log access."""

    def __init__(self, *args: Any, action_logger: Any = None, **kwargs: Any) -> None:
        logger = RedactedAccessLog() if action_logger is not None else None
        super().__init__(*args, action_logger=logger, **kwargs)


class RedactingCommandLine(CommandLineInterface):  # type: ignore[misc]
    server_class = RedactingServer


if __name__ == "__main__":
    RedactingCommandLine.entrypoint()

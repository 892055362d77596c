"""Secrets that ride in URLs, kept out of logs.

Two credentials are path segments: the Call Event hook's secret (``/hooks/voipnow/<secret>/``,
see ``dashboard.hooks``) and a wallboard's token (``/wallboard/<token>/`` and
``/ws/wallboard/<token>/``). Whoever reads a log that holds one can post events or watch a
wallboard. ``redact`` replaces the segment after ``voipnow/`` or ``wallboard/`` wherever it
appears (a path, a ``?next=`` parameter, a message), also when percent-encoded, since Django
decodes the path before routing it. ``RedactSecrets`` applies it to every record the console
log writes (settings.LOGGING), and ``dashboard.serve`` to daphne's access log.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

REDACTED = "[redacted]"
# The segment after a marker, up to the next separator; several slashes count as one.
_SECRET_SEGMENT = re.compile(r"(?i)(wallboard|voipnow)(/+)([^/?#&\s\"']+)")


def _decoded(text: str) -> str:
    """``text`` with percent-escapes decoded until none is left (at most three rounds)."""
    for _ in range(3):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def redact(text: str) -> str:
    """``text`` with every hook secret and wallboard token replaced by ``[redacted]``; ``text``
    itself when it holds none."""
    decoded = _decoded(text)
    if not _SECRET_SEGMENT.search(decoded):
        return text
    return _SECRET_SEGMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", decoded)


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped: one log line stays one
    line whatever a request's path holds."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class RedactSecrets(logging.Filter):
    """A filter for handlers: the record's message is redacted before any handler formats it
    (a request path in "Not Found: /wallboard/<token>/", a hook URL in a warning)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed record: logging reports it as it would have
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

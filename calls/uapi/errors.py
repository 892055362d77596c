"""Errors the UAPI client raises.

Two kinds matter to callers: the server could not be reached or failed (``UapiUnavailable``:
try later, and never blindly for a request that may already have rung a phone;
``UapiAnswerLost`` when the request went out and its answer did not come back), and the
server refused the request (``UapiRejected``: carries VoipNow's error ``code``; retrying the
same request gets the same answer). Also here: reading VoipNow's error body off an answer.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from .wire import ErrorCode


class UapiError(Exception):
    """Base of every client error; ``message`` is meant for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UapiUnavailable(UapiError):
    """VoipNow did not answer usefully: connection failure, timeout, 5xx or an unreadable body.

    ``sent`` is False only when the request is known not to have left Callboard (no
    connection, or its token could not be had): then VoipNow cannot have acted on it. True
    means it reached VoipNow or may have.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        timed_out: bool = False,
        sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.timed_out = timed_out
        self.sent = sent


class UapiAnswerLost(UapiUnavailable):
    """The request was sent and its answer was lost: cut off, not in time, or not JSON.

    VoipNow may have done what was asked (a PUT may have rung a phone) and the client cannot
    tell; asking again may do it twice.
    """


class UapiRejected(UapiError):
    """VoipNow answered 4xx; ``code`` is the UAPI error code (``pc_timeout_invalid``, ...),
    ``detail`` VoipNow's own message (for logs; ``message`` is ours, for people)."""

    def __init__(self, message: str, *, status: int, code: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail


class UapiAuthError(UapiRejected):
    """The token was refused (401/403 ``access_denied``) or the app credentials are wrong."""


class UapiInvalidId(UapiRejected):
    """An id was not of the form VoipNow documents for its place in a URL (``..``, empty, a
    slash, too long): refused before anything was sent. ``code`` is the one VoipNow answers for
    that place (``pc_phonecall_invalid``, ``extension_invalid``, ...), so callers handle it as
    VoipNow's own refusal; ``segment`` names the place (``phoneCallId``), ``value`` what was
    given (shortened)."""

    def __init__(self, *, segment: str, value: object, code: str) -> None:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        super().__init__(
            f"{shown} is not a valid {segment}: nothing was sent to VoipNow.",
            status=400,
            code=code,
            detail=f"{segment} refused before sending",
        )
        self.segment = segment
        self.value = shown


# What each UAPI error code means, in words a supervisor understands.
CODE_WORDS: dict[str, str] = {
    ErrorCode.ACCESS_DENIED: "VoipNow refused Callboard's credentials",
    ErrorCode.USER_INVALID: "VoipNow does not know the user that owns this call",
    ErrorCode.EXTENSION_INVALID: "VoipNow does not know the extension of this call",
    ErrorCode.REQUEST_NOT_IMPLEMENTED: "this VoipNow does not support the request",
    ErrorCode.INTERNAL_SERVER_ERROR: "VoipNow failed internally",
    ErrorCode.INVALID_CLIENT: "VoipNow does not accept Callboard's app credentials",
    ErrorCode.PC_TIMEOUT_INVALID: "the time to wait for pickup must be a number of seconds above 0",
    ErrorCode.PC_CALLERID_INVALID: "the caller ID must look like: John Doe <+3334444>",
    ErrorCode.PC_PHONECALL_INVALID: "the call no longer exists on VoipNow",
    ErrorCode.PC_PHONECALLVIEW_INVALID: "that leg of the call no longer exists",
    ErrorCode.PC_SENDCALLTO_INVALID: (
        "the extension to ring must be a phone terminal of the call's organization"
    ),
    ErrorCode.PC_ACTION_INVALID: "VoipNow does not support this action",
}


def describe_code(code: str, fallback: str = "") -> str:
    """Words for a UAPI error code; the server's own message when the code is not known."""
    return CODE_WORDS.get(code, fallback or f"VoipNow refused the request ({code})")


def json_or_none(response: httpx.Response) -> Any:
    """The response's body decoded as JSON; None when it is not JSON."""
    try:
        # orjson decodes a 5,000-call listing in about two thirds of the json module's time.
        return orjson.loads(response.content)
    except ValueError:
        return None


def error_of(response: httpx.Response) -> tuple[str, str]:
    """``(code, message)`` of VoipNow's ``{"error": {"code", "message"}}`` body; empty strings
    when the body has none."""
    body = json_or_none(response)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("code") or ""), str(error.get("message") or "")
        if isinstance(error, str):  # OAuth-style {"error": "...", "error_description": "..."}
            return error, str(body.get("error_description") or "")
    return "", ""

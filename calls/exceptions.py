"""What can go wrong when a supervisor acts on a call, each with the HTTP status that fits.

Three families, kept apart because people must act differently on each: Callboard refused the
request (fix the input or ask an admin), VoipNow refused it (its UAPI code says why), VoipNow
could not be reached (try again later; the request may or may not have rung a phone).
"""

from __future__ import annotations


class CallboardError(Exception):
    """Base: ``message`` is for people, ``status`` for the HTTP answer."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        if status is not None:
            self.status = status


class Refused(CallboardError):
    """Callboard's own rules refused the request before anything was sent to VoipNow."""


class BadInput(Refused):
    status = 400


class NotAllowed(Refused):
    status = 403


class NoSuchCall(Refused):
    status = 404


class AlreadyRinging(Refused):
    status = 409


class PhoneNotReady(Refused):
    """VoipNow's Presence says the supervisor's phone cannot take the ring now: not
    registered, or already on a call. 409: the request is right, the phone's state is not."""

    status = 409


class VoipNowRejected(CallboardError):
    """VoipNow answered with an error code; ``code`` is the UAPI code."""


class VoipNowUnavailable(CallboardError):
    """VoipNow did not answer usefully (timeout, 5xx, unreachable). Never retried blindly."""

    status = 502


class NotOnCall(Refused):
    """The supervisor has no leg on the call to hang up (never joined it, or already left)."""

    status = 409

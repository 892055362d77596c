"""The UAPI error answer: ``{"error": {"code": ..., "message": ...}}`` with an HTTP status."""

from __future__ import annotations

from calls.uapi.wire import ErrorCode

# Codes the documentation names that ``calls.uapi.wire.ErrorCode`` does not list: Create
# PhoneCallEvents with a bad type (3.x Create PhoneCallEvents page) and the QueueAgents
# failures (3.x Update QueueAgents page).
PCET_TYPE_INVALID = "pcet_type_invalid"
STATUS_INVALID = "status_invalid"
QAG_AGENT_INVALID = "qag_agent_invalid"


class UapiError(Exception):
    """A refusal the UAPI reports with an error code; raised anywhere, answered by the app."""

    def __init__(self, status: int, code: ErrorCode | str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = str(code)
        self.message = message

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(code: ErrorCode | str, message: str) -> UapiError:
    return UapiError(400, code, message)


class ControlError(Exception):
    """A refusal of the control API (not part of the UAPI)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

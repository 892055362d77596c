"""Wire constants of VoipNow's UAPI, shared by the client and the emulator.

Only names and numbers that appear on the wire live here. The client and the emulator share
nothing else, so a mistake in the rules of one is caught by the tests of the other.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

TOKEN_PATH = "/oauth/token.php"
API_PREFIXES = ("/uapi", "/unifiedapi")

# userId contexts (URI segment 1) and the extension wildcard (URI segment 2).
USER_ME = "@me"
USER_VIEWER = "@viewer"
USER_OWNER = "@owner"
EXTENSION_SELF = "@self"

DEFAULT_WAIT_FOR_PICKUP = 25  # seconds, per the BargeIn spec
MAX_COUNT = 5000


class ViewStatus(IntEnum):
    """PhoneCallView.status."""

    UNKNOWN = 0
    OFF_HOOK = 1
    TRYING = 2
    RINGING = 3
    OTHER_SIDE_RINGING = 4
    ON_CALL = 5


VIEW_STATUS_WORDS = {
    ViewStatus.UNKNOWN: "unknown",
    ViewStatus.OFF_HOOK: "off hook",
    ViewStatus.TRYING: "trying",
    ViewStatus.RINGING: "ringing",
    ViewStatus.OTHER_SIDE_RINGING: "other side ringing",
    ViewStatus.ON_CALL: "on call",
}


class Flow(IntEnum):
    LOCAL = 2
    OUTGOING_PUBLIC = 4
    INCOMING_PUBLIC = 8


class Disposition(IntEnum):
    """How a call ended, in PhoneCallView and in call records (List CDR)."""

    ANSWERED = 0
    BUSY = 1
    FAILED = 2
    NO_ANSWER = 3
    UNKNOWN = 4
    NOT_ALLOWED = 5


class Action(StrEnum):
    """PhoneCallAction.action values."""

    BARGE_IN = "BargeIn"
    WHISPER = "Whisper"
    MONITOR = "Monitor"
    PICK_UP = "PickUp"
    ON_HOLD = "OnHold"
    OFF_HOLD = "OffHold"
    PARK = "Park"
    UNPARK = "UnPark"
    TRANSFER = "Transfer"
    TRANSFER_TO_VOICEMAIL = "TransferToVoicemail"
    START_RECORDING = "StartRecording"
    STOP_RECORDING = "StopRecording"


class ErrorCode(StrEnum):
    """`error.code` values of the UAPI error body."""

    ACCESS_DENIED = "access_denied"
    USER_INVALID = "user_invalid"
    EXTENSION_INVALID = "extension_invalid"
    REQUEST_NOT_IMPLEMENTED = "request_not_implemented"
    INTERNAL_SERVER_ERROR = "internal_server_error"
    INVALID_CLIENT = "invalid_client"
    COUNT_INVALID = "count_invalid"
    FILTERBY_INVALID = "filterby_invalid"
    FILTERVALUE_INVALID = "filtervalue_invalid"
    FIELDS_INVALID = "fields_invalid"
    FILTEROP_INVALID = "filterop_invalid"
    SORTORDER_INVALID = "sortorder_invalid"
    # Not found in the docs: what an out-of-range startIndex answers; the emulator uses this.
    STARTINDEX_INVALID = "startindex_invalid"
    # BargeIn (and the other PhoneCallActions)
    PC_TIMEOUT_INVALID = "pc_timeout_invalid"
    PC_CALLERID_INVALID = "pc_callerid_invalid"
    PC_PHONECALL_INVALID = "pc_phonecall_invalid"
    PC_PHONECALLVIEW_INVALID = "pc_phonecallview_invalid"
    PC_SENDCALLTO_INVALID = "pc_sendcallto_invalid"
    PC_ACTION_INVALID = "pc_action_invalid"
    PC_FORMAT_INVALID = "pc_format_invalid"
    PC_MAXINPARKING_INVALID = "pc_maxinparking_invalid"
    PC_PRIVATE_INVALID = "pc_private_invalid"
    PC_PHONENUMBER_INVALID = "pc_phonenumber_invalid"
    # Create Simple PhoneCalls (undocumented codes, named like the documented ones)
    PC_EXTENSION_INVALID = "pc_extension_invalid"
    PC_SOURCE_INVALID = "pc_source_invalid"
    PC_DESTINATION_INVALID = "pc_destination_invalid"
    PC_CALLDURATION_INVALID = "pc_callduration_invalid"
    # PhoneCallEvents
    PCE_TYPE_INVALID = "pce_type_invalid"
    PCE_METHOD_INVALID = "pce_method_invalid"
    PCE_ID_INVALID = "pce_id_invalid"
    PCE_URL_INVALID = "pce_url_invalid"
    PCE_STATUS_INVALID = "pce_status_invalid"
    # List CDR (the v5 HTTP Return Codes page)
    CDR_START_DATE_INVALID = "cdr_start_date_invalid"
    CDR_END_DATE_INVALID = "cdr_end_date_invalid"
    CDR_SOURCE_INVALID = "cdr_source_invalid"
    CDR_DESTINATION_INVALID = "cdr_destination_invalid"
    CDR_FLOW_INVALID = "cdr_flow_invalid"
    CDR_DISPOSITION_INVALID = "cdr_disposition_invalid"
    CDR_SAVE_START_DATE_INVALID = "cdr_save_start_date_invalid"
    CDR_SAVE_END_DATE_INVALID = "cdr_save_end_date_invalid"
    CDR_INVALID_DATE_PARAMETERS = "cdr_invalid_date_parameters"
    CDR_INVALID_FILTER_BY_ANSWERED = "cdr_invalid_filter_by_answered"
    CDR_INVALID_FILTER_BY_PUBLISHED = "cdr_invalid_filter_by_published"
    CDR_INVALID_FILTER_BY_SOURCE = "cdr_invalid_filter_by_source"
    CDR_INVALID_FILTER_BY_DESTINATION = "cdr_invalid_filter_by_destination"
    # QueueAgents
    QA_STATUS_INVALID = "qa_status_invalid"
    QA_AGENT_INVALID = "qa_agent_invalid"


class CallEventType(IntEnum):
    """PhoneCallEvent.type."""

    DIAL_IN = 0
    DIAL_OUT = 1
    HANGUP = 2
    ANSWER_INCOMING = 3
    ANSWER_OUTGOING = 4


class CallEventMethod(IntEnum):
    GET = 0
    POST = 1


class ExtensionType(StrEnum):
    """VoipNow extension types, by their SystemAPI codes."""

    PHONE_TERMINAL = "term"
    QUEUE = "phoneQueue"
    IVR = "ivr"
    VOICEMAIL_CENTER = "voicecenter"
    CONFERENCE = "conference"
    CALLBACK = "callback"
    CALLING_CARD = "callcard"
    INTERCOM = "intercom"
    QUEUE_LOGIN_CENTER = "queuecenter"


EXTENSION_TYPE_LABELS = {
    ExtensionType.PHONE_TERMINAL: "Phone Terminal",
    ExtensionType.QUEUE: "Queue",
    ExtensionType.IVR: "IVR",
    ExtensionType.VOICEMAIL_CENTER: "Voicemail Center",
    ExtensionType.CONFERENCE: "Conference",
    ExtensionType.CALLBACK: "Callback",
    ExtensionType.CALLING_CARD: "Calling Card",
    ExtensionType.INTERCOM: "Intercom/Paging",
    ExtensionType.QUEUE_LOGIN_CENTER: "Queue Login Center",
}


class AgentStatus(IntEnum):
    LOGGED_OUT = 0
    ONLINE = 1
    PAUSED = 2


class PresenceStatus(IntEnum):
    UNKNOWN = 0
    ONLINE = 1
    RINGING = 2
    BUSY = 3

"""A caller ID Callboard accepts is never refused by VoipNow: Callboard's check is no looser
than the server's grammar, which the emulator applies."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from calls.models import CALLER_ID_RE
from calls.uapi.emulator.params import valid_caller_id


@settings(max_examples=300, derandomize=True, database=None)
@given(st.from_regex(CALLER_ID_RE))
def test_what_callboard_accepts_voipnow_accepts(caller_id: str) -> None:
    assert valid_caller_id(caller_id.strip())


@settings(max_examples=300, derandomize=True, database=None)
@given(st.text(alphabet="Ab 1+*<>.'-\t\n", max_size=20))
def test_what_voipnow_refuses_callboard_refuses(caller_id: str) -> None:
    if not valid_caller_id(caller_id.strip()):
        assert CALLER_ID_RE.match(caller_id.strip()) is None

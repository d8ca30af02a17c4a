"""State and policy enums stay their strings on the wire: JSON, f-strings, %-formatting, dict keys."""

from __future__ import annotations

import json

import pytest

from edge_fer.capture.status import STATES, CaptureState
from edge_fer.wire import WireWord


class Color(WireWord):
    RED = "red"
    DARK_BLUE = "dark-blue"


@pytest.mark.parametrize("member", list(Color) + list(CaptureState))
def test_a_member_is_its_value_everywhere_text_is_made(member):
    value = member.value
    assert member == value and hash(member) == hash(value) and {value: 1}[member] == 1
    assert str(member) == f"{member}" == "%s" % member == format(member, "") == value  # noqa: UP031 (logging uses %)
    assert f"{member:>20}" == f"{value:>20}"
    assert json.dumps({"k": member, member: [member]}) == json.dumps({"k": value, value: [value]})
    assert member.encode() == value.encode()
    assert type(member)(value) is member


def test_capture_states_keep_their_words_and_order():
    assert STATES == ("connecting", "connected", "reconnecting", "failed", "ended", "stopped")
    assert CaptureState.values() == STATES

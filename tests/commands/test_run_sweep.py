"""A representative slice of ``benchmarks/config_sweep.py``: what check-config accepts, ``edge-fer run`` starts
and stops cleanly on SIGTERM (or at ``--max-frames``); what it refuses is one line per problem and exit 78.

The full sweep sets every numeric setting to both edges of its declared range and every text setting to
blank, spaces, non-ASCII and 5000 characters; these cases are the ones that used to pass check-config and
then crash ``run`` with a traceback (exit 1), plus one of each kind of edge.
"""

from __future__ import annotations

import pytest

from benchmarks.config_sweep import Case, base_config, judge
from tests.settings_ranges import with_value

CASES = [
    (("detector", "scale_factor"), 0.95, "ran"),  # the pyramid step's top edge
    (("detector", "scale_factor"), 0.97, "refused"),  # passed check-config, then ValueError in run
    (("http", "token"), "", "refused"),  # passed check-config, then ValueError in run
    (("http", "token"), "two words", "refused"),
    (("http", "token"), "Küche", "refused"),
    (("http", "host"), " ", "refused"),
    (("cameras", 0, "width"), 16, "refused"),  # the demo source draws 32 px at least: refused up front now
    (("cameras", 0, "source"), "ftp://camera/stream", "refused"),
    (("cameras", 0, "detect_every"), 1000, "ran"),
    (("cameras", 0, "name"), "x" * 64, "ran"),  # the longest name a camera may have
    (("cameras", 0, "name"), "x" * 5000, "refused"),  # ran, then a 5000-character topic level in MQTT
    (("mqtt", "host"), "x" * 5000, "refused"),  # was accepted, then an exception in paho's thread
    (("output", "video", "path"), "x" * 5000, "refused"),  # was exit 70: "File name too long" in the check
    (("detector", "threads"), 64, "ran"),
    (("tracking", "min_det_score"), 0.5, "refused"),  # moved to detector.min_score
]


@pytest.mark.parametrize(("path", "value", "expected"), CASES, ids=[f"{p[-1]}={v!r:.20}" for p, v, _ in CASES])
def test_accepted_configs_run_and_stop_cleanly_refused_ones_exit_78(tmp_path, path, value, expected):
    data = base_config(tmp_path)
    if path[-1] == "min_det_score":
        data["tracking"]["min_det_score"] = value
    else:
        data = with_value(data, path, value)
    outcome = judge(Case(".".join(map(str, path)), repr(value), data, path[-1] != "source"), tmp_path, 10)
    assert outcome.verdict == expected, outcome.detail

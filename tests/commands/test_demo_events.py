"""``edge-fer --source demo`` shows a new user the whole event vocabulary: start, change and end, with more
than one emotion, from the real classifier on the rendered frames."""

from __future__ import annotations

import json

from tests.processes import edge_fer


def test_the_demo_prints_start_change_and_end_with_two_emotions():
    # 20 s of demo read as fast as inference goes: smile, frown, smile again.
    proc = edge_fer(
        "--source", "demo", "--log-level", "warning", "--max-frames", "600", "--set", "cameras[0].realtime=false"
    )
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    said = [(e["type"], e["emotion"]) for e in events if e["type"] != "update"]
    assert said[0] == ("start", "happy") and said[-1][0] == "end", said
    changes = [emotion for kind, emotion in said if kind == "change"]
    assert len(changes) >= 2 and changes[0] != "happy" and changes[1] == "happy", said
    assert {e["track_id"] for e in events} == {1}

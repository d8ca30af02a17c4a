"""Counting lost events from seq numbers: gaps, duplicates, late arrivals, restarts."""

import pytest

from edge_fer.outputs.mqtt.seqcheck import SeqChecker


def feed(seqs, run_id="r1"):
    checker = SeqChecker()
    notes = [checker.observe("dev", "cam0", run_id, s) for s in seqs]
    return checker, [n for n in notes if n]


@pytest.mark.parametrize(
    ("seqs", "missing", "duplicates", "late", "notes"),
    [
        ([0, 1, 2, 3], 0, 0, 0, []),
        ([0, 1, 3], 1, 0, 0, ["GAP dev/cam0 run r1: missing seq 2 (1 event)"]),
        ([5, 6, 10], 3, 0, 0, ["GAP dev/cam0 run r1: missing seq 7-9 (3 events)"]),  # joined at 5: no gap before
        (
            [0, 1, 2, 1, 2, 3],
            0,
            2,
            0,
            ["DUPLICATE dev/cam0 run r1: seq 1 again (a re-send", "DUPLICATE dev/cam0 run r1: seq 2"],
        ),
        ([0, 2, 1, 3], 0, 0, 1, ["GAP dev/cam0 run r1: missing seq 1 (1 event)", "LATE"]),
        ([0, 4, 2, 5], 2, 0, 1, ["GAP", "LATE"]),
        ([10, 11, 3, 12], 0, 0, 0, []),  # older than where we joined: a replayed backlog, not judged
    ],
)
def test_one_stream(seqs, missing, duplicates, late, notes):
    checker, got = feed(seqs)
    (stream,) = checker.streams.values()
    assert (stream.missing, stream.duplicates, stream.late, stream.received) == (missing, duplicates, late, len(seqs))
    assert len(got) == len(notes)
    for note, expected in zip(got, notes):
        assert note.startswith(expected)


def test_streams_are_kept_apart_and_a_new_run_starts_over():
    checker = SeqChecker()
    for device, camera, run, seq in [
        ("a", "c0", "r1", 0),
        ("a", "c1", "r1", 0),
        ("a", "c0", "r1", 1),
        ("b", "c0", "r1", 0),
    ]:
        assert checker.observe(device, camera, run, seq) is None
    assert checker.observe("a", "c0", "r2", 0) is None  # restart: seq starts over, not a duplicate
    assert checker.observe("a", "c0", "r1", 3) is not None
    lines = checker.summary()
    assert lines[0] == "summary: 4 streams, 6 events, 1 missing, 0 duplicates"
    assert "a/c0 run r1: 3 events, seq 0-3, 1 missing (seq 2), 0 duplicates, 0 late" in lines[1]

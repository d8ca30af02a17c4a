"""StdoutSink: one flushed JSON line per event, and a quiet stop when the reader goes away."""

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from edge_fer.outputs.runner import OutputRunner
from edge_fer.outputs.stdout import StdoutSink
from tests import factories

REPO = Path(__file__).resolve().parents[2]


class CountingStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.flushes = 0

    def flush(self):
        self.flushes += 1
        super().flush()


def test_each_event_is_one_json_line_flushed_at_once():
    stream = CountingStream()
    sink = StdoutSink(stream)
    events = factories.face_events(5)
    for n, event in enumerate(events, 1):
        sink.on_event(event)
        assert stream.flushes == n  # a reader sees the line now, not when a buffer fills
    lines = stream.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [e.to_dict() for e in events]
    assert sink.problem is None


def test_a_closed_stream_stops_the_sink_without_raising(caplog):
    stream = io.StringIO()
    sink = StdoutSink(stream)
    stream.close()
    for event in factories.face_events(3):
        sink.on_event(event)
    assert "closed" in sink.problem
    assert len([r for r in caplog.records if r.name == "edge_fer.sinks.stdout"]) == 1


WRITER = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    from edge_fer.outputs.runner import OutputRunner
    from edge_fer.outputs.stdout import StdoutSink
    from tests import factories

    runner = OutputRunner([StdoutSink()]).start()
    events = factories.face_events(200)
    for round in range(20):
        for event in events:
            runner.on_event(event)
        runner.flush(5.0)
    runner.close(5.0)
    (stats,) = runner.stats()
    print(f"still running: delivered={stats.delivered} errors={stats.errors} problem={stats.problem}", file=sys.stderr)
    """
)


def test_reader_closing_the_pipe_is_logged_once_and_the_process_exits_cleanly():
    # exactly `edge-fer | head -n 3`: bash reports the writer's own exit status through PIPESTATUS
    command = f'{sys.executable} -c "$WRITER" | head -n 3; echo "writer_status=${{PIPESTATUS[0]}}" >&2'
    result = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"WRITER": WRITER, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(json.loads(line)["type"] == "face" for line in lines)
    stderr = result.stderr
    assert "writer_status=0" in stderr, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert stderr.count("edge_fer.sinks.stdout") == 1 and "broken pipe); no more events" in stderr, stderr
    assert "still running: " in stderr and "errors=0" in stderr and "problem=the reader closed" in stderr


def test_runner_keeps_counting_after_the_pipe_broke():
    sink = StdoutSink(io.StringIO())
    sink.stream.close()
    runner = OutputRunner([sink]).start()
    for event in factories.face_events(10):
        runner.on_event(event)
    runner.close(5.0)
    (stats,) = runner.stats()
    assert stats.delivered == 10 and stats.errors == 0 and stats.problem is not None

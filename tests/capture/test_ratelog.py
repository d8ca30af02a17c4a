import logging

from edge_fer.capture.ratelog import RateLimitedLog


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_day_of_errors_every_second_writes_a_few_lines_an_hour(caplog):
    clock = Clock()
    rl = RateLimitedLog(logging.getLogger("edge_fer.test.ratelog"), interval=600, clock=clock)
    with caplog.at_level(logging.WARNING, logger="edge_fer.test.ratelog"):
        for second in range(86_400):
            clock.now = float(second)
            rl.log("read", logging.WARNING, f"cam0: read failed #{second}")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "cam0: read failed #0"
    assert 140 <= len(lines) <= 145  # one per 10 minutes
    assert lines[1] == "cam0: read failed #600 (and 599 more like it in the last 600 s)"


def test_keys_are_independent_and_flush_reports_the_rest(caplog):
    clock = Clock()
    rl = RateLimitedLog(logging.getLogger("edge_fer.test.ratelog"), interval=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="edge_fer.test.ratelog"):
        assert rl.log("open", logging.WARNING, "open failed")
        assert rl.log("read", logging.WARNING, "read failed")
        clock.now = 5
        assert not rl.log("open", logging.WARNING, "open failed again")
        rl.flush("open")
        assert rl.log("open", logging.WARNING, "open failed after flush")  # logged at once again
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "open failed",
        "read failed",
        "open failed again (repeated 1 more time in the last 5 s)",
        "open failed after flush",
    ]

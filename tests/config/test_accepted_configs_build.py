"""What check-config accepts, the daemon can be built from: one settings model, no second set of limits.

Before the settings models became the runtime objects, each section was copied into a dataclass with its
own limits, and a value between the two (``detector.scale_factor: 0.97``, an empty ``http.token``) passed
``check-config`` and then killed ``run`` with a traceback. Here hypothesis sets every numeric setting at, just
inside and just outside the bounds its model declares (read from the models, so they cannot drift), a few at
a time, validates as check-config does, and builds the whole daemon (models loaded, outputs and sources
constructed, nothing started) from every config that passes. The process-level sweep is
``benchmarks/config_sweep.py``; ``tests/commands/test_run_sweep.py`` runs a subset of it.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edge_fer.config.loading import parse_config
from edge_fer.config.settings import Config, ConfigError
from edge_fer.runtime.daemon import Daemon
from tests.settings_ranges import numeric_settings, with_value

SETTINGS = numeric_settings()
CASES = [(s, v) for s in SETTINGS for v in s.edges()]
# Rules across settings: the source is built with the camera's size and rate (the demo draws 32 px at least),
# a longest wait is at least the first, the snapshots' outbox share holds one snapshot of the largest size.
CROSS_FIELD = {
    "cameras[0].width", "cameras[0].height", "cameras[0].reconnect.max_delay", "mqtt.reconnect_max_delay",
    "output.snapshots.publish_queue_mb",
}  # fmt: skip


def test_every_numeric_setting_declares_both_bounds():
    # A setting without an upper bound has no edge to test, and a huge value is where the copies differed.
    assert len(SETTINGS) > 40
    unbounded = [s.key for s in SETTINGS if s.low is None or s.high is None]
    assert unbounded == []


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict:
    """Every output on (not started), so every numeric setting reaches the object that uses it."""
    video = tmp_path_factory.mktemp("video")
    data = Config().model_dump(mode="json")
    data["mqtt"]["host"] = "127.0.0.1"  # built, never connected: nothing is started
    data["http"].update(enabled=True, port=0)
    data["output"]["video"]["path"] = str(video)
    data["output"]["stdout"] = "on"
    return data


def _build(config: Config) -> None:
    daemon = Daemon(config)
    daemon.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(CASES), min_size=1, max_size=4, unique_by=lambda case: case[0].path))
def test_any_config_check_config_accepts_builds_the_whole_daemon(base, cases):
    data = base
    for setting, value in cases:
        data = with_value(data, setting.path, value)
    try:
        config = parse_config(data, "sweep")
    except ConfigError as exc:
        # Refused: each problem is at a key set outside its range, or is one of the cross-field rules.
        outside = {s.key for s, v in cases if not s.inside(v)}
        event("refused")
        assert {p.path for p in exc.items} <= outside | CROSS_FIELD, exc.problems
        return
    assert all(s.inside(v) for s, v in cases), "a value outside its declared range was accepted"
    event("accepted")
    _build(config)


@pytest.mark.parametrize(
    ("section", "values"),
    [
        ("detector", {"scale_factor": 0.95, "min_face_size": 12, "threads": 2, "helper_thread": False}),
        ("http", {"enabled": True, "port": 0, "token": "abc-DEF_123.~"}),
        ("tracking", {"smoothing_tau": 0, "min_change_duration": 0, "max_center_distance": 0}),
    ],
)
def test_values_that_once_crashed_run_now_build(base, section, values):
    data = dict(base)
    data[section] = {**base[section], **values}
    _build(parse_config(data, "sweep"))

"""ONNX Runtime sessions as the models get them: intra-op threads capped at the CPUs this process may use."""

from __future__ import annotations

import logging
import os

from edge_fer.bundled import bundled_model
from edge_fer.vision.onnx_session import open_session, usable_threads


def test_more_threads_than_cpus_are_capped_with_one_warning(caplog):
    cpus = len(os.sched_getaffinity(0))
    caplog.set_level(logging.WARNING, logger="edge_fer")
    assert usable_threads(1) == 1
    assert usable_threads(cpus) == cpus
    assert usable_threads(cpus + 63) == cpus
    assert usable_threads(cpus + 63) == cpus
    said = [r.getMessage() for r in caplog.records if "threads per model" in r.getMessage()]
    assert said == [f"{cpus + 63} threads per model asked for, {cpus} CPUs available: using {cpus}"]


def test_a_session_opened_with_64_threads_runs_on_the_cpus_there_are():
    session = open_session(bundled_model("mtcnn_onet.onnx"), 64)
    assert session.get_session_options().intra_op_num_threads == min(64, len(os.sched_getaffinity(0)))

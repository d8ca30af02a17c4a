"""Limits at the edges of the config: name lengths, and files that are refused before they are read.

A 70,000-character device name used to pass validation and then kill the MQTT thread for the whole run;
a config file that is a FIFO hung ``check-config`` and ``run`` before a line was written.
"""

from __future__ import annotations

import os

import pytest

from edge_fer.config.checks import MAX_NAME_CHARS, MAX_PREFIX_CHARS
from edge_fer.config.loading import load_config, parse_config
from edge_fer.config.secrets import read_password_file
from edge_fer.config.source import ConfigError
from tests.test_readfile import within_deadline


def problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


@pytest.mark.parametrize(
    "data, words",
    [
        ({"device": "x" * 70_000}, "device is 70000 characters long; at most 64"),
        ({"device": "d" * (MAX_NAME_CHARS + 1)}, "device is 65 characters long"),
        ({"device": "kiosk\x1b[2J"}, "device must not contain control characters"),
        ({"cameras": [{"name": "c" * 1000}]}, "camera name is 1000 characters long"),
        ({"cameras": [{"name": "door\nFAKE"}]}, "camera name must not contain control characters"),
        ({"cameras": [{"name": " "}]}, "camera name must not be empty"),
        ({"mqtt": {"topic_prefix": "p" * 300}}, "is 300 characters long; at most 128"),
        ({"mqtt": {"discovery_prefix": "h/" * 100 + "x"}}, "is 201 characters long"),
    ],
    ids=["device-70000", "device-65", "device-escape", "camera-1000", "camera-newline", "camera-blank",
         "prefix-300", "discovery-201"],
)  # fmt: skip
def test_names_and_prefixes_past_their_limits_are_config_problems(data, words):
    found = problems(data)
    assert len(found) == 1 and words in found[0], found
    assert len(found[0]) < 300  # the value itself is shortened in the message


def test_names_at_their_limits_are_accepted():
    config = parse_config(
        {
            "device": "d" * MAX_NAME_CHARS,
            "cameras": [{"name": "Front Door " + "c" * (MAX_NAME_CHARS - 11)}],
            "mqtt": {"topic_prefix": "/".join(["p" * 63, "q" * 64])},
        }
    )
    assert len(config.device) == MAX_NAME_CHARS and len(config.mqtt.topic_prefix) == MAX_PREFIX_CHARS


def test_the_frame_size_limit_defaults_to_4k_and_refuses_a_requested_size_over_it():
    assert parse_config({}).cameras[0].max_frame_pixels == 3840 * 2160
    ok = parse_config({"cameras": [{"source": "demo", "width": 3840, "height": 2160}]})
    assert ok.cameras[0].width == 3840
    found = problems({"cameras": [{"source": "demo", "width": 7680, "height": 4320}]})
    assert len(found) == 1 and "cameras[0].max_frame_pixels" in found[0], found
    assert "raise max_frame_pixels to at least 33177600" in found[0]
    raised = {"source": "demo", "width": 7680, "height": 4320, "max_frame_pixels": 7680 * 4320}
    assert parse_config({"cameras": [raised]}).cameras[0].max_frame_pixels == 33_177_600
    assert "max_frame_pixels" in problems({"cameras": [{"max_frame_pixels": 10**9}]})[0]


def _fifo(path):
    os.mkfifo(path)


def _zero(path):
    path.symlink_to("/dev/zero")


def _sparse(path):
    with open(path, "wb") as f:
        f.truncate(4 << 30)


@pytest.mark.parametrize(
    "make, words",
    [(_fifo, "is a FIFO"), (_zero, "is a character device"), (_sparse, "is 4.0 GB, over the limit of 1.0 MB")],
    ids=["fifo", "link-to-dev-zero", "sparse-4GB"],
)
def test_a_config_file_that_is_not_a_file_is_one_problem_at_once(tmp_path, make, words):
    path = tmp_path / "edge-fer.yaml"
    make(path)
    with pytest.raises(ConfigError) as caught:
        within_deadline(load_config, path)
    (problem,) = caught.value.problems
    assert words in problem


@pytest.mark.parametrize(
    "make, words",
    [(_fifo, "is a FIFO"), (_zero, "is a character device"), (_sparse, "over the limit of 64.0 KB")],
    ids=["fifo", "link-to-dev-zero", "sparse-4GB"],
)
def test_a_password_file_that_is_not_a_file_is_refused_at_once(tmp_path, make, words):
    path = tmp_path / "password"
    make(path)
    with pytest.raises(ValueError, match=words):
        within_deadline(read_password_file, path)

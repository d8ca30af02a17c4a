"""Topic names and name sanitising: a camera name can never add a level or become a wildcard."""

import pytest

from edge_fer.config.settings import safe_name as config_safe_name
from edge_fer.outputs.mqtt.topics import TopicParts, Topics, check_prefix, parse_topic, safe_name

NAMES = [
    ("cam0", "cam0"),
    ("Living Room", "living_room"),
    ("front/door", "front_door"),
    ("a+b#c", "a_b_c"),
    ("nul\0byte", "nul_byte"),
    ("tab\tnew\nline\x7f", "tab_new_line"),
    ("  Spaced  ", "spaced"),
    ("été", "t"),
    ("UPPER-case_ok", "upper-case_ok"),
    ("///", "unnamed"),
    ("", "unnamed"),
    ("#", "unnamed"),
    ("$SYS", "sys"),
]


@pytest.mark.parametrize(("name", "safe"), NAMES)
def test_safe_name(name, safe):
    assert safe_name(name) == safe
    assert safe_name(safe) == safe  # idempotent
    assert all(c in "abcdefghijklmnopqrstuvwxyz0123456789_-" for c in safe)


@pytest.mark.parametrize(("name", "safe"), NAMES)
def test_safe_name_matches_the_config_layer(name, safe):
    # The config checks camera names for topic clashes with its own safe_name; both must agree.
    assert config_safe_name(name) == safe_name(name)


def test_topic_layout():
    t = Topics("Kitchen Pi", "home/vision")
    assert t.device == "kitchen_pi"
    assert t.availability == "home/vision/kitchen_pi/availability"
    assert t.stats == "home/vision/kitchen_pi/stats"
    assert t.face("Front/Door") == "home/vision/kitchen_pi/front_door/face"
    assert t.state("cam0") == "home/vision/kitchen_pi/cam0/state"
    assert t.status("cam0") == "home/vision/kitchen_pi/cam0/status"
    assert Topics("d").face("c") == "edge-fer/d/c/face"


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("", "empty"),
        ("a/+/b", "wildcards"),
        ("a/#", "wildcards"),
        ("a\0b", "wildcards"),
        ("a\tb", "control"),
        ("$SYS/x", "reserved"),
        ("/edge-fer", "'/'"),
        ("edge-fer/", "'/'"),
        ("a//b", "'//'"),
    ],
)
def test_bad_prefixes(prefix, problem):
    with pytest.raises(ValueError, match="MQTT topic prefix") as info:
        check_prefix(prefix)
    assert problem in str(info.value)
    with pytest.raises(ValueError):
        Topics("dev", prefix)


@pytest.mark.parametrize(
    ("topic", "parts"),
    [
        ("edge-fer/dev/cam0/face", TopicParts("dev", "cam0", "face")),
        ("edge-fer/dev/cam0/state", TopicParts("dev", "cam0", "state")),
        ("edge-fer/dev/cam0/status", TopicParts("dev", "cam0", "status")),
        ("edge-fer/dev/availability", TopicParts("dev", None, "availability")),
        ("edge-fer/dev/stats", TopicParts("dev", None, "stats")),
        ("edge-fer/dev/cam0/other", None),
        ("other/dev/cam0/face", None),
        ("edge-fer/dev", None),
    ],
)
def test_parse_topic(topic, parts):
    assert parse_topic(topic) == parts


def test_parse_topic_round_trips_every_topic():
    t = Topics("dev", "a/b")
    for topic in (t.face("c"), t.state("c"), t.status("c"), t.availability, t.stats):
        parts = parse_topic(topic, "a/b")
        assert parts is not None and parts.device == "dev"


def test_topic_levels_and_config_names_share_one_safe_name():
    from edge_fer.config import settings
    from edge_fer.outputs.mqtt import topics

    assert topics.safe_name is settings.safe_name

"""Topic names, in one place, so publisher, discovery, ``listen`` and the docs can never disagree.

Layout (``<prefix>`` defaults to ``edge-fer``)::

    <prefix>/<device>/availability        retained: online | offline (also the last will)
    <prefix>/<device>/stats               periodic stats JSON
    <prefix>/<device>/<camera>/face       face events, QoS 1, not retained
    <prefix>/<device>/<camera>/state      retained per-camera summary, cleared on a clean shutdown
    <prefix>/<device>/<camera>/status     retained camera connection state
    <prefix>/<device>/<camera>/snapshot   a JPEG of a face (binary payload), QoS 1, not retained; only with
                                          output.snapshots.publish

Device and camera names pass through :func:`safe_name` so that a name such as ``Living Room/#1`` can
never add a topic level or act as a wildcard.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_fer.config.checks import check_prefix, safe_name  # one rule each, shared with the config

DEFAULT_PREFIX = "edge-fer"
CAMERA_KINDS: tuple[str, ...] = ("face", "state", "status", "snapshot")
DEVICE_KINDS: tuple[str, ...] = ("availability", "stats")


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic names of one device; device and camera names are made safe on the way in."""

    device: str
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        object.__setattr__(self, "device", safe_name(self.device))

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def stats(self) -> str:
        return f"{self.base}/stats"

    def face(self, camera: str) -> str:
        return f"{self.base}/{safe_name(camera)}/face"

    def state(self, camera: str) -> str:
        return f"{self.base}/{safe_name(camera)}/state"

    def status(self, camera: str) -> str:
        return f"{self.base}/{safe_name(camera)}/status"

    def snapshot(self, camera: str) -> str:
        return f"{self.base}/{safe_name(camera)}/snapshot"


@dataclass(frozen=True, slots=True)
class TopicParts:
    """What a received topic is about; ``camera`` is None for device-level topics."""

    device: str
    camera: str | None
    kind: str


def parse_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> TopicParts | None:
    """Split one of our topics back into its parts; None for anything that is not ours."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    levels = topic[len(head) :].split("/")
    if len(levels) == 2 and levels[1] in DEVICE_KINDS:
        return TopicParts(levels[0], None, levels[1])
    if len(levels) == 3 and levels[2] in CAMERA_KINDS:
        return TopicParts(levels[0], levels[1], levels[2])
    return None

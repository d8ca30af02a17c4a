"""The words a config may choose from, as enums: code compares against members, files keep their words.

Each is a :class:`~edge_fer.wire.WireWord`, so ``events.mode: every_frame`` in YAML, ``--set
output.stdout=off`` and the effective config that ``check-config`` prints read exactly as before.
"""

from __future__ import annotations

from edge_fer.wire import WireWord


class EventsMode(WireWord):
    """``events.mode``: which events a frame produces."""

    TRACKS = "tracks"  # start / change / update / end per confirmed track
    EVERY_FRAME = "every_frame"  # one "face" event per face per processed frame


class StdoutMode(WireWord):
    """``output.stdout``: whether events go to stdout as JSON lines."""

    AUTO = "auto"  # on when no MQTT broker is configured
    ON = "on"
    OFF = "off"

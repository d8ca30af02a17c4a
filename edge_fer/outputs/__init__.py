"""Outputs for events and annotated frames: stdout JSON lines, video files, and (later) MQTT.

Every sink runs behind :class:`SinkRunner` on its own thread, so none of them can block inference.
"""

from edge_fer.outputs.base import FrameInfo, Sink, SinkRunner, SinkStats

__all__ = ["FrameInfo", "Sink", "SinkRunner", "SinkStats"]

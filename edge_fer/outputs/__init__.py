"""Where results go: stdout JSON lines, video files, MQTT, the browser preview and the local window.

Each is an :class:`Output`; all of them run behind one :class:`OutputRunner`, every output on its own thread,
so none of them can block inference.
"""

from edge_fer.outputs.base import FrameInfo, Output, OutputStats, StatsView
from edge_fer.outputs.runner import OutputRunner

__all__ = ["FrameInfo", "Output", "OutputRunner", "OutputStats", "StatsView"]

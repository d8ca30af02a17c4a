"""Remote preview for machines without a screen: annotated MJPEG streams, stats and events over HTTP."""

from edge_fer.config.comms import HttpSettings
from edge_fer.outputs.web.server import PreviewError, PreviewServer

__all__ = ["HttpSettings", "PreviewError", "PreviewServer"]

"""Remote preview for machines without a screen: annotated MJPEG streams, stats and events over HTTP."""

from edge_fer.outputs.web.server import PreviewError, PreviewServer
from edge_fer.outputs.web.settings import HttpSettings

__all__ = ["HttpSettings", "PreviewError", "PreviewServer"]

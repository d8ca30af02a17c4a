"""Remote preview for machines without a screen: annotated MJPEG streams, stats and events over HTTP."""

from edge_fer.http.server import PreviewError, PreviewServer
from edge_fer.http.settings import HttpSettings

__all__ = ["HttpSettings", "PreviewError", "PreviewServer"]

"""Events as JSON lines on stdout, one flushed line per event, so ``edge-fer | jq`` sees them at once.

When the reader goes away (``edge-fer | head``) writing stops for good. With other outputs the daemon keeps
running for them (one warning); as the only output it stops cleanly like a Unix filter (``stop_when_gone``,
set by the daemon: one info line, exit 0). Standard output is then pointed at /dev/null so that the
interpreter's own flush at exit does not print a BrokenPipeError traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
from typing import TextIO

from edge_fer.events import FaceEvent
from edge_fer.outputs.base import Output

log = logging.getLogger("edge_fer.sinks.stdout")


class StdoutSink(Output):
    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._closed_reason: str | None = None
        self.stop_when_gone: threading.Event | None = None  # set when this is the daemon's only output

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def on_event(self, event: FaceEvent) -> None:
        if self._closed_reason is not None:
            return
        try:
            self.stream.write(event.to_json() + "\n")
            self.stream.flush()
        except BrokenPipeError:
            self._stop("the reader closed standard output (broken pipe)")
        except ValueError as exc:  # writing to a closed file object
            self._stop(f"standard output is closed ({exc})")
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            self._stop("the reader closed standard output (broken pipe)")

    def _stop(self, reason: str) -> None:
        self._closed_reason = reason
        if self.stop_when_gone is not None:
            log.info("stdout: %s; it was the only output, so edge-fer stops", reason)
            self.stop_when_gone.set()
        else:
            log.warning("stdout: %s; no more events are written there, other outputs continue", reason)
        stream = self.stream
        try:
            fd = stream.fileno()
        except (OSError, ValueError, AttributeError):
            return
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        except OSError:
            pass

    def flush(self, timeout: float) -> bool:
        """True: nothing is left waiting here (a reader that left was reported when it left)."""
        if self._closed_reason is None:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self._stop("standard output could not be flushed")
        return True

    @property
    def problem(self) -> str | None:
        return self._closed_reason

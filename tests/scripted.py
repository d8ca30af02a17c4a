"""A source that plays a script: frames plus failures, for testing code that consumes capture.

It runs through the real :class:`~edge_fer.capture.thread.CaptureThread`, so a test of
reconnects, stalls or bad frames exercises the same code a camera does::

    frames = [image] * 5
    src = ScriptedSource([*frames, Gone(opens=2), *frames, End()], fps=100)

One script spans the whole life of the source: after a reconnect, reading continues where it
stopped. Anything that is not a step is returned by ``read`` as it is (arrays of the wrong
shape included: rejecting them is the capture thread's job). When the script runs out the
stream ends, and any later ``open`` fails permanently, so a live source does not spin.
``fps`` pacing and ``Stall`` steps wait on ``clock`` (pass a tests.clock.FakeClock to make a
60 s stall or a 100 fps schedule cost no real time; the capture thread follows it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edge_fer.capture.source import Pacer, Source, SourceError
from edge_fer.clock import SYSTEM_CLOCK, Clock


@dataclass(frozen=True)
class Fail:
    """``read`` raises SourceError with this message (a transient read error)."""

    message: str = "read error"


@dataclass(frozen=True)
class End:
    """``read`` returns None: end of stream (a file's EOF, or a live stream that closed)."""


@dataclass(frozen=True)
class Stall:
    """``read`` blocks this long before going on, like a camera that stops sending.

    An :meth:`~edge_fer.capture.source.Source.interrupt` (the watchdog, or shutdown) cuts it
    short with a SourceError.
    """

    seconds: float


@dataclass(frozen=True)
class Gone:
    """The device disappears: ``read`` raises, and the next ``opens`` calls to ``open`` fail."""

    opens: int = 1
    message: str = "device disappeared"


class ScriptedSource(Source):
    def __init__(
        self,
        script: Iterable[object],
        *,
        live: bool = True,
        fps: float | None = None,
        paced: bool | None = None,
        open_failures: int = 0,
        name: str = "scripted",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(clock)
        self.is_live = live
        self.fps = fps
        self._paced = live if paced is None else paced
        self.name = name
        self._steps = iter(script)
        self._open_failures = open_failures
        self._pacer = Pacer(fps, clock) if fps else None
        self._is_open = False
        self._finished = False
        self.opens = 0
        self.reads = 0

    @property
    def paced(self) -> bool:
        return self._paced

    @property
    def is_open(self) -> bool:
        return self._is_open

    def describe(self) -> str:
        return f"scripted source {self.name}"

    def open(self) -> None:
        self.opens += 1
        if self._finished:
            raise SourceError(f"{self.describe()}: script finished", permanent=True)
        if self._open_failures > 0:
            self._open_failures -= 1
            raise SourceError(f"{self.describe()}: device not found")
        self._is_open = True
        if self._pacer is not None:
            self._pacer.reset()

    def close(self) -> None:
        self._is_open = False

    def read(self) -> np.ndarray | None:
        if not self._is_open:
            raise SourceError(f"{self.describe()}: read before open")
        self.reads += 1
        while True:
            step = next(self._steps, _EXHAUSTED)
            if step is _EXHAUSTED:
                self._finished = True
                return None
            if isinstance(step, Stall):
                if not self._pause(step.seconds):
                    raise SourceError(f"{self.describe()}: interrupted while stalled")
                continue
            if isinstance(step, Fail):
                raise SourceError(f"{self.describe()}: {step.message}")
            if isinstance(step, Gone):
                self._open_failures = step.opens
                raise SourceError(f"{self.describe()}: {step.message}")
            if isinstance(step, End):
                return None
            if self._pacer is not None and self._paced:
                self._pause(self._pacer.delay())
            return step  # type: ignore[return-value]


_EXHAUSTED = object()

"""``--preview``: the annotated frames in a local OpenCV window, for an engineer at the machine.

An :class:`~edge_fer.outputs.base.Output` like the others: it draws on its own runner thread, which suits
OpenCV's HighGUI (it wants every window call from one thread) and keeps a slow display off the inference
worker. ``q`` or Esc sets the stop event. Without a display it refuses up front with a pointer to the
browser preview instead of a Qt/GTK traceback. A display that is set but unusable (no X server there, a
refused X authorisation, a dead SSH forward) makes Qt abort the whole process (SIGABRT, exit 134) from inside
``cv2.namedWindow``, where no Python code can catch it, so the window is first opened in a short-lived child
process (:func:`display_problem`); only when that works does this process touch the display.

edge-fer depends on the headless OpenCV (no Qt: a venv of about 200 MB instead of 490 MB), which has no
window at all; ``--preview`` then says how to swap in the GUI build (one ``cv2`` module each, so the two
cannot sit side by side as an extra) before it looks at any display.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import threading

import numpy as np

from edge_fer.outputs.base import FrameInfo, Output

log = logging.getLogger("edge_fer.preview")

HEADLESS_HINT = (
    "on a headless machine use the browser preview instead: set `http: {enabled: true}` in the config and open "
    "http://127.0.0.1:8080/ (from another machine: ssh -L 8080:127.0.0.1:8080 <device>)"
)


PROBE = "import cv2; cv2.namedWindow('edge-fer probe', cv2.WINDOW_NORMAL); cv2.destroyAllWindows()"
PROBE_TIMEOUT_S = 15.0


GUI_BUILD_HINT = (
    "this OpenCV is the headless build, which has no windows; for --preview replace it with the GUI build "
    "(pip uninstall -y opencv-python-headless && pip install 'opencv-python>=4.8')"
)


class PreviewUnavailable(RuntimeError):
    pass


def opencv_has_windows() -> bool:
    """Whether this cv2 was built with a window backend (``GUI: NONE`` in the headless wheels)."""
    import cv2

    found = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return found is not None and found.group(1).upper() != "NONE"


def display_problem(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why OpenCV cannot open a window on this display, in one line, or None when it can."""
    try:
        probe = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return f"opening a window did not finish within {timeout:g} s"
    if probe.returncode == 0:
        return None
    lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
    said = next((line for line in lines if "could not connect" in line.lower()), lines[-1] if lines else "")
    how = f"exit status {probe.returncode}" if probe.returncode > 0 else f"signal {-probe.returncode}"
    return f"{said[:160]} ({how})" if said else how


class LocalPreview(Output):
    name = "window"

    def __init__(self, stop: threading.Event) -> None:
        if not opencv_has_windows():
            raise PreviewUnavailable(f"--preview: {GUI_BUILD_HINT}, or {HEADLESS_HINT}")
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise PreviewUnavailable(
                f"--preview needs a display but neither DISPLAY nor WAYLAND_DISPLAY is set; {HEADLESS_HINT}"
            )
        if sys.platform.startswith("linux"):
            problem = display_problem()
            if problem is not None:
                where = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                raise PreviewUnavailable(
                    f"--preview cannot open a window on display {where}: {problem}; {HEADLESS_HINT}"
                )
        import cv2

        self._cv2 = cv2
        self.stop = stop
        try:
            cv2.namedWindow("edge-fer", cv2.WINDOW_NORMAL)  # fails here, clearly, rather than on the first frame
            cv2.destroyWindow("edge-fer")
        except cv2.error as exc:
            detail = str(exc).strip()[:120]
            raise PreviewUnavailable(f"--preview cannot open a window ({detail}); {HEADLESS_HINT}") from None

    def wants_frames(self, camera: str) -> bool:
        return True

    def on_frame(self, frame: FrameInfo, image: np.ndarray) -> None:
        self._cv2.imshow(f"edge-fer: {frame.camera}", image)
        if (self._cv2.waitKey(1) & 0xFF) in (ord("q"), 27):
            log.info("preview: quit requested")
            self.stop.set()

    def close(self) -> None:
        with contextlib.suppress(self._cv2.error):
            self._cv2.destroyAllWindows()

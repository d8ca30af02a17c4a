"""The preview in a real headless Chromium: the stream plays, stats and events refresh, a bad token is refused.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``) and
selenium (the test extra). Set EDGE_FER_DOCS_SCREENSHOT=1 to refresh docs/preview.png from the real daemon's run
(``test_the_real_daemons_page_with_the_demo``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.outputs.web.conftest import Feeder, face_event
from tests.wait import wait_until

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
# Without the background-networking flags Chromium phones home, and this machine's closed network refuses it.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1000,860",
)
TOKEN = "browser-Token-42"
DOCS_SHOT = Path(__file__).resolve().parents[3] / "docs" / "preview.png"


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Chromium: apt-get install -y chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    options.page_load_strategy = "eager"  # an MJPEG <img> never finishes loading
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Pipeline:
    """Stands in for the pipeline's side of the contract: moving frames, stats and events."""

    def __init__(self, server) -> None:
        self.server = server
        self.feeder = Feeder(server, fps=15, size=384)
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._events = threading.Thread(target=self._emit, name="test-events", daemon=True)

    def stats(self) -> dict:
        elapsed = max(1e-3, time.monotonic() - self.started)
        return {
            "device": "test-box",
            "uptime_s": round(elapsed, 1),
            "cameras": {
                "cam0": {
                    "processed": self.feeder.offered,
                    "fps_processed": self.feeder.offered / elapsed,
                    "latency_ms_p50": 38.5,
                    "latency_ms_p95": 61.0,
                    "faces": 1,
                    "state": "connected",
                }
            },
        }

    def _emit(self) -> None:
        seq, emotions = 0, ("neutral", "happy", "surprise")
        self.server.offer_event(face_event(seq, "start", 1, "neutral"))
        while not self._stop.wait(0.7):
            seq += 1
            self.server.offer_event(face_event(seq, "change", 1, emotions[seq % 3]))

    def __enter__(self) -> Pipeline:
        self.feeder.__enter__()
        self._events.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._events.join(5)
        self.feeder.__exit__()


def png(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def test_page_streams_and_refreshes_in_chromium(browser, make_server, tmp_path):
    from selenium.webdriver.common.by import By

    holder: dict[str, Pipeline] = {}
    server = make_server(stats=lambda: holder["p"].stats(), token=TOKEN)
    with Pipeline(server) as pipeline:
        holder["p"] = pipeline
        base = f"http://127.0.0.1:{server.port}"
        browser.get(f"{base}/?token={TOKEN}")
        img = browser.find_element(By.CSS_SELECTOR, 'section.camera[data-camera="cam0"] img.stream')
        wait_until(
            lambda: browser.execute_script("return arguments[0].naturalWidth", img) == 384, 20, 0.1, what="a frame"
        )
        assert server.watchers("cam0") == 1

        first = png(img.screenshot_as_png)
        stats_el = browser.find_element(By.CSS_SELECTOR, 'section.camera[data-camera="cam0"] .camera-stats')
        stats_before = wait_until(lambda: stats_el.text, 20, 0.1, what="stats")

        def refreshed() -> bool:  # the stream moves on and the stats are redrawn (about once a second)
            moved = np.abs(first.astype(int) - png(img.screenshot_as_png).astype(int)).mean() > 3
            return moved and stats_el.text != stats_before

        wait_until(refreshed, 20, 0.2, what="the stream image and the stats to refresh")
        second = png(img.screenshot_as_png)
        stats_after = stats_el.text

        assert first.std() > 20 and second.std() > 20, "the stream image is blank"
        assert np.abs(first.astype(int) - second.astype(int)).mean() > 3, "the stream image did not change"
        assert stats_before != stats_after, "stats did not refresh"
        assert "latency ms p50 / p95" in stats_after and "connected" in stats_after
        faces = browser.find_element(By.CSS_SELECTOR, 'section.camera[data-camera="cam0"] ul.faces')
        assert wait_until(lambda: faces.text.startswith("#1 "), 20, 0.1, what="the face's emotion")
        events = wait_until(lambda: browser.find_element(By.ID, "events").text, 20, 0.1, what="events")
        assert "cam0" in events and "#1" in events
        assert browser.find_element(By.ID, "status").text.startswith("live")


def test_wrong_token_is_refused_in_chromium(browser, make_server):
    from selenium.webdriver.common.by import By

    server = make_server(token=TOKEN)
    with Feeder(server, fps=15):
        base = f"http://127.0.0.1:{server.port}"
        for url in (f"{base}/?token=wrong", f"{base}/", f"{base}/stream/cam0.mjpg?token=wrong"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url, timeout=10)
            assert refused.value.code == 401
            browser.get(url)
            body = browser.find_element(By.TAG_NAME, "body").text
            assert body.startswith("401 Unauthorized"), body[:200]
            assert browser.find_elements(By.CSS_SELECTOR, "img.stream, section.camera, #events") == []
            assert "preview.js" not in browser.page_source
        assert server.watchers("cam0") == 0
        assert server.hub.get("cam0").encoded == 0, "a refused viewer must not cause encoding"


def test_timeline_is_drawn_and_moves_in_chromium(browser, make_server):
    """The canvas of the camera shows the distribution and the track's strip, and is redrawn as events come."""
    from selenium.webdriver.common.by import By

    holder: dict[str, Pipeline] = {}
    server = make_server(stats=lambda: holder["p"].stats())
    with Pipeline(server) as pipeline:
        holder["p"] = pipeline
        browser.get(f"http://127.0.0.1:{server.port}/")
        canvas = browser.find_element(By.CSS_SELECTOR, 'section.camera[data-camera="cam0"] canvas.timeline')
        mood = browser.find_element(By.CSS_SELECTOR, 'section.camera[data-camera="cam0"] p.mood')
        wait_until(lambda: mood.text.count("%") >= 2, 20, 0.1, what="a distribution of two emotions")
        assert mood.text.startswith("last 5 min: ")
        first = png(canvas.screenshot_as_png)
        colours = {tuple(int(c) for c in bgr) for bgr in first.reshape(-1, 3)}
        from edge_fer.outputs.annotate import EMOTION_COLORS

        drawn = {label for label, bgr in EMOTION_COLORS.items() if bgr in colours}
        assert len(drawn) >= 2, f"the timeline shows {drawn}"  # the events alternate neutral, happy, surprise
        strip = browser.execute_script("return arguments[0].height", canvas)
        assert strip >= 40  # the distribution bar, one strip and the axis

        def moved() -> bool:
            return np.abs(first.astype(int) - png(canvas.screenshot_as_png).astype(int)).mean() > 0.5

        wait_until(moved, 20, 0.3, what="the timeline to be redrawn with newer events")


def test_the_real_daemons_page_with_the_demo(browser, tmp_path):
    """The product itself: ``edge-fer --source demo`` with the preview on; its page streams and its timeline is
    redrawn as the demo runs. With EDGE_FER_DOCS_SCREENSHOT=1 this page becomes docs/preview.png."""
    from selenium.webdriver.common.by import By

    from tests.mosquitto import free_port

    port = free_port()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "edge_fer", "run", "--source", "demo", "--log-level", "warning",
         "--set", "http.enabled=true", "--set", f"http.port={port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[3],
    )  # fmt: skip
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), 60, 0.2, what="the daemon's preview")
        browser.get(f"http://127.0.0.1:{port}/")
        camera = browser.find_element(By.CSS_SELECTOR, "section.camera")
        img, canvas = camera.find_element(By.CSS_SELECTOR, "img.stream"), camera.find_element(By.CSS_SELECTOR, "canvas")
        wait_until(lambda: browser.execute_script("return arguments[0].naturalWidth", img) > 0, 30, 0.1, what="a frame")
        mood = camera.find_element(By.CSS_SELECTOR, "p.mood")
        wait_until(lambda: "%" in mood.text, 30, 0.2, what="the demo's emotions in the timeline")
        first = png(canvas.screenshot_as_png)

        def moved() -> bool:
            return np.abs(first.astype(int) - png(canvas.screenshot_as_png).astype(int)).mean() > 0.2

        wait_until(moved, 30, 0.5, what="the timeline to move on while the demo runs")
        if os.environ.get("EDGE_FER_DOCS_SCREENSHOT"):
            time.sleep(20)  # some history on the strips
            browser.execute_script("window.scrollTo(0, 0)")
            small = cv2.resize(png(browser.get_screenshot_as_png()), None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
            ok, data = cv2.imencode(".png", small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
            assert ok and len(data) < 250_000, f"docs screenshot is {len(data)} bytes"
            DOCS_SHOT.write_bytes(data.tobytes())
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False

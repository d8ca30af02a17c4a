"""The frame hub: free to feed, encodes only while watched, at most max_fps, once for all viewers."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from edge_fer.outputs.web.frames import BOUNDARY, FrameHub, encode_jpeg, multipart_part
from tests.clock import FakeClock
from tests.outputs.web.conftest import moving_frame
from tests.wait import wait_until


def encoder_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("http-encode-")]


@pytest.fixture
def hub():
    hub = FrameHub(max_fps=10.0, jpeg_quality=75)
    yield hub
    assert hub.stop(5.0)


def test_encode_jpeg_round_trips_a_real_frame():
    frame = moving_frame(3)
    decoded = cv2.imdecode(np.frombuffer(encode_jpeg(frame, 90), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == frame.shape
    assert np.abs(decoded.astype(int) - frame.astype(int)).mean() < 8


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((8, 8, 2), np.uint8), "shape"),
        (np.zeros((0, 8, 3), np.uint8), "shape"),
        ("not an image", "uint8"),
    ],
)
def test_encode_jpeg_names_what_is_wrong(image, message):
    with pytest.raises(ValueError, match=message):
        encode_jpeg(image, 75)  # type: ignore[arg-type]


def test_part_carries_length_and_the_next_boundary():
    part = multipart_part(b"\xff\xd8abc\xff\xd9")
    assert part == (
        b"Content-Type: image/jpeg\r\nContent-Length: 7\r\n\r\n\xff\xd8abc\xff\xd9\r\n--" + BOUNDARY.encode() + b"\r\n"
    )


def test_no_viewer_means_no_encoding_and_no_encoder_thread(hub):
    for i in range(30):
        hub.offer("cam0", moving_frame(i), time.monotonic())
    time.sleep(0.3)
    feed = hub.get("cam0")
    assert feed is not None and feed.offered == 30
    assert feed.encoded == 0 and feed.latest_part() is None
    assert encoder_threads() == []


def test_encoder_lives_only_while_watched(hub):
    hub.offer("cam0", moving_frame(0), time.monotonic())
    feed = hub.get("cam0")
    feed.attach()
    part = feed.wait_part(0, timeout=5)
    assert part is not None and part.frame_id == 1
    assert encoder_threads() == ["http-encode-cam0"]
    feed.detach()
    assert wait_until(lambda: encoder_threads() == [], timeout=3)
    before = feed.encoded
    for i in range(1, 20):
        hub.offer("cam0", moving_frame(i), time.monotonic())
    time.sleep(0.3)
    assert feed.encoded == before


def test_encoding_rate_is_capped():
    clock = FakeClock(start=0.0)
    fast = FrameHub(max_fps=5.0, jpeg_quality=75, clock=clock)
    try:
        fast.offer("cam0", moving_frame(0), clock.monotonic())
        feed = fast.get("cam0")
        feed.attach()
        start = clock.monotonic()
        i = 1
        while clock.monotonic() - start < 1.5 - 1e-9:  # 1.5 s of a 60 fps producer, on the fake clock
            fast.offer("cam0", moving_frame(i), clock.monotonic())
            i += 1
            # the encoder waits out the rest of its 200 ms, or it has just encoded the newest frame
            wait_until(lambda: clock.waiters or getattr(feed.latest_part(), "frame_id", 0) == feed.offered, 5, 0.001)
            clock.advance(1 / 60)
        elapsed = clock.monotonic() - start
        feed.detach()
        assert i > 40, "the producer should have offered far more frames than the cap"
        assert 3 <= feed.encoded <= 5.0 * elapsed + 1  # one at once, then one per 200 ms: 8
        assert feed.encoded >= 7
    finally:
        assert fast.stop(5.0)


def test_a_bad_frame_is_skipped_and_the_next_good_one_encodes(hub, caplog):
    hub.offer("cam0", np.zeros((16, 16, 3), np.float64), time.monotonic())  # type: ignore[arg-type]
    feed = hub.get("cam0")
    feed.attach()
    assert wait_until(lambda: feed.encode_errors == 1)
    hub.offer("cam0", moving_frame(1), time.monotonic())
    part = feed.wait_part(0, timeout=5)
    feed.detach()
    assert part is not None and part.frame_id == 2
    assert "preview frame skipped" in caplog.text and "uint8" in caplog.text


def test_offer_is_cheap_while_watched(hub):
    frames = [moving_frame(i) for i in range(4)]
    hub.offer("cam0", frames[0], time.monotonic())
    feed = hub.get("cam0")
    feed.attach()
    start = time.perf_counter()
    for i in range(20000):
        hub.offer("cam0", frames[i % 4], 0.0)
    per_call = (time.perf_counter() - start) / 20000
    feed.detach()
    # A reference swap and an Event.set: microseconds, never an encode (which takes milliseconds).
    assert per_call < 100e-6
    assert feed.encoded < 200


def test_stop_wakes_waiting_viewers(hub):
    hub.offer("cam0", moving_frame(0), time.monotonic())
    feed = hub.get("cam0")
    feed.attach()
    first = feed.wait_part(0, timeout=5)
    result: list[object] = []
    waiter = threading.Thread(target=lambda: result.append(feed.wait_part(first.seq, timeout=30)))
    waiter.start()
    time.sleep(0.1)
    assert hub.stop(5.0)
    waiter.join(2)
    assert not waiter.is_alive() and result == [None]

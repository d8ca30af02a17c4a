import importlib.util
import itertools
import time

import numpy as np
import pytest

from edge_fer.capture.demo import DemoSource
from edge_fer.capture.source import SourceError
from tests.clock import FakeClock


def test_frames_are_a_pure_function_of_the_index():
    a, b = DemoSource(), DemoSource()
    for index in (0, 7, 123):
        assert np.array_equal(a.render(index), b.render(index))
    assert a.render(0).shape == (480, 640, 3) and a.render(0).dtype == np.uint8


def test_the_face_moves_and_keeps_a_detectable_size():
    demo = DemoSource()
    boxes = [demo.face_boxes(i)[0] for i in range(0, 30 * 20, 5)]  # 20 seconds
    heights = [h for _, _, _, h in boxes]
    assert min(heights) >= 85 and max(heights) <= 175
    assert max(heights) - min(heights) > 50  # it breathes
    xs = [x + w / 2 for x, _, w, _ in boxes]
    ys = [y + h / 2 for _, y, _, h in boxes]
    assert max(xs) - min(xs) > 150 and max(ys) - min(ys) > 60  # it travels
    for x, y, w, h in boxes:
        assert x >= 0 and y >= 0 and x + w <= 640 and y + h <= 480
    steps = [abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in itertools.pairwise(boxes)]
    assert max(steps) < 60  # smooth: under 12 px a frame
    frame_a, frame_b = demo.render(0), demo.render(15)
    assert np.abs(frame_a.astype(int) - frame_b.astype(int)).mean() > 5


def test_several_faces_get_their_own_cells():
    demo = DemoSource(width=1280, height=720, faces=4)
    for index in (0, 100, 200):
        boxes = demo.face_boxes(index)
        assert len(boxes) == 4
        for x, y, w, h in boxes:
            assert x >= 0 and y >= 0 and x + w <= 1280 and y + h <= 720 and 60 <= h <= 175
        for i, a in enumerate(boxes):  # no two faces overlap
            for b in boxes[i + 1 :]:
                assert a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]


def test_reads_like_a_live_camera_at_its_fps():
    clock = FakeClock(auto=True)
    demo = DemoSource(width=320, height=240, fps=50, clock=clock)
    assert demo.is_live and demo.paced and demo.fps == 50
    demo.open()
    t0 = clock.monotonic()
    images = [demo.read() for _ in range(26)]
    assert clock.monotonic() - t0 == pytest.approx(0.5)  # 25 periods of 20 ms after the first frame
    assert clock.slept == pytest.approx([0.02] * 25)
    assert images[0].shape == (240, 320, 3)
    assert np.array_equal(images[25], demo.render(25))


def test_unpaced_demo_is_fast_and_interruptible():
    demo = DemoSource(width=320, height=240, fps=1, realtime=False)
    demo.open()
    t0 = time.monotonic()
    for _ in range(10):
        demo.read()
    assert time.monotonic() - t0 < 1.0
    slow = DemoSource(width=320, height=240, fps=0.5)
    slow.open()
    slow.read()
    slow.interrupt()
    t0 = time.monotonic()
    slow.read()  # would wait two seconds
    assert time.monotonic() - t0 < 0.5


def test_read_before_open_and_bad_settings():
    with pytest.raises(SourceError, match="read before open"):
        DemoSource().read()
    for kwargs in ({"width": 10}, {"fps": 0}, {"faces": 0}, {"faces": 65}):
        with pytest.raises(ValueError):
            DemoSource(**kwargs)
    assert DemoSource(faces=3).describe() == "demo 640x480 @ 30 fps, 3 faces"


@pytest.mark.skipif(
    importlib.util.find_spec("edge_fer.vision.mtcnn") is None, reason="edge_fer.vision.mtcnn is not in this checkout"
)
@pytest.mark.parametrize("size, faces", [((640, 480), 1), ((1280, 720), 4)])
def test_mtcnn_finds_every_demo_face_where_the_demo_put_it(size, faces):
    from edge_fer.config.settings import DetectorSettings
    from edge_fer.vision.mtcnn import MtcnnDetector
    from edge_fer.vision.types import Box

    detector = MtcnnDetector(DetectorSettings(min_face_size=20))
    demo = DemoSource(width=size[0], height=size[1], faces=faces)
    for index in (0, 45, 110):
        found = detector.detect(demo.render(index))
        expected = [Box(*b) for b in demo.face_boxes(index)]
        assert len(found) == faces, (index, found)
        for box in expected:
            assert max(d.box.iou(box) for d in found) > 0.6


def test_the_expression_turns_and_the_real_classifier_sees_it(analyzer):
    """Smiling for the first half of each period, frowning (mirrored mouth) for the second, cross-faded."""
    from collections import Counter

    from edge_fer.capture.demo import EXPRESSION_PERIOD, FADE_S, frown_weight

    half = EXPRESSION_PERIOD / 2
    assert frown_weight(0.0) == 0.0 and frown_weight(half - 0.01) == 0.0
    assert frown_weight(half + FADE_S / 2) == pytest.approx(0.5) and frown_weight(half + FADE_S) == 1.0
    assert frown_weight(EXPRESSION_PERIOD - FADE_S / 2) == pytest.approx(0.5)
    assert frown_weight(1.0, phase=0.5) == 1.0  # a second face frowns while the first smiles
    demo = DemoSource(realtime=False)
    fps = demo.fps
    seen = {}
    for name, start in (("smile", 1.0), ("frown", half + 1.0)):
        frames = [round((start + k * 0.6) * fps) for k in range(10)]
        seen[name] = Counter(f[0].emotion.label for i in frames if (f := analyzer.analyze(demo.render(i)).faces))
    assert seen["smile"] == Counter(happy=10), seen
    assert sum(seen["frown"].values()) == 10 and seen["frown"]["happy"] == 0, seen
    assert np.array_equal(demo.render(5), DemoSource().render(5))  # still a pure function of the index

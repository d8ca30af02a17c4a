"""Large frames: the shrunk pyramid source, P-Net in tiles, crops from the uint8 frame, bounded batches."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from edge_fer.config.settings import DetectorSettings
from edge_fer.vision import mtcnn_ops as ops
from edge_fer.vision import mtcnn_pyramid as pyramid
from edge_fer.vision.mtcnn import MAX_BATCH, MtcnnDetector
from edge_fer.vision.onnx_session import bundled_model, open_session
from edge_fer.vision.types import Box
from tests.photos import make_scene, multi_face_scenes


@pytest.fixture(scope="module")
def pnet_session():
    return open_session(bundled_model("mtcnn_pnet.onnx"))


@pytest.mark.parametrize("n", [11, 12, 63, 64, 65, 100, 129, 200, 257])
def test_tile_spans_cover_the_whole_map_once_in_order(n):
    spans = pyramid._spans(n, 64)
    assert spans[0][0] == 0 and spans[0][2] == 0 and spans[-1][1] == n
    assert spans[-1][3] == ops.pnet_output_size(n)
    for (_, stop, _, map_stop), (start, _, map_start, _) in itertools.pairwise(spans):
        assert map_stop == map_start and start == stop - 10 and start % 2 == 0
    for start, stop, map_start, map_stop in spans:
        assert stop - start <= 64 and map_stop - map_start == ops.pnet_output_size(stop - start)


@pytest.mark.parametrize("shape", [(150, 200), (131, 97), (64, 300)])
def test_pnet_in_tiles_gives_the_whole_map(pnet_session, shape):
    image = np.random.default_rng(3).standard_normal((1, *shape, 3)).astype(np.float32)
    whole = pyramid.pnet(pnet_session, image, tile=10_000)
    tiled = pyramid.pnet(pnet_session, image, tile=40)
    for a, b in zip(whole, tiled):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_pnet_cells_from_tiles_are_the_whole_maps_cells_in_the_same_order(pnet_session):
    """Tiles give only their cells above the threshold; put together they are the whole map's, row-major, as
    ``np.nonzero`` finds them there (the order the reference's score sort starts from)."""
    image = np.random.default_rng(8).standard_normal((1, 170, 230, 3)).astype(np.float32)
    reg, prob = pyramid.pnet(pnet_session, image, tile=10_000)
    whole = ops.pnet_cells(reg[0], prob[0, :, :, 1], 0.05)
    tiled = pyramid.pnet(pnet_session, image, tile=40, threshold=0.05)
    assert whole[0].size > 50
    for a, b in zip(whole[:2], tiled[:2]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(whole[2:], tiled[2:]):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_the_16_bit_source_holds_the_float_sources_values():
    bgr = np.random.default_rng(9).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    fixed = pyramid.fixed_point_rgb(bgr)
    assert fixed.dtype == np.uint16
    np.testing.assert_array_equal(pyramid.as_input(fixed), pyramid.normalised_rgb(bgr))  # bit for bit
    shrunk = cv2.resize(fixed, (35, 25), interpolation=cv2.INTER_AREA)
    expected = cv2.resize(pyramid.normalised_rgb(bgr), (35, 25), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(pyramid.as_input(shrunk), expected, atol=1 / 512 / 128 + 1e-6)


def test_a_large_stills_pyramid_is_16_bit_and_finds_the_same_faces(monkeypatch):
    """Above 4K the source is 16-bit (half the memory); the faces are those of the float source within a
    hundredth of a pixel here (at most 1.2 px on 3400 px faces of real photos scaled to 4000 px)."""
    scene = make_scene(
        4000,
        3000,
        faces=[(800, 700, 300, False), (2500, 1500, 60, True), (3500, 2500, 40, False, "camera")],
        background="coffee",
        seed=2,
    )
    with MtcnnDetector(DetectorSettings(min_face_size=20)) as detector:
        plan = detector.pyramid(3000, 4000)
        assert pyramid.pyramid_source(scene.bgr, plan[0]).dtype == np.uint16
        sixteen = detector.detect_array(scene.bgr)
        monkeypatch.setattr(pyramid, "FIXED_POINT_ABOVE", 10**9)
        assert pyramid.pyramid_source(scene.bgr, plan[0]).dtype == np.float32
        floats = detector.detect_array(scene.bgr)
    assert sixteen.shape == floats.shape == (3, 15)
    np.testing.assert_allclose(sixteen, floats, atol=0.05)


def test_without_the_helper_levels_are_made_one_at_a_time(pnet_session):
    """The iterator makes a level only when it is read: a plan whose second level cannot be made still gives
    its first (with the helper, every level was made ahead and held together)."""
    image = np.zeros((300, 360, 3), dtype=np.float32)
    levels = pyramid.run_pnet(pnet_session, image, [(0.5, 150, 180), (0.2, 0, 24)], None, threshold=0.6)
    ys, xs, reg, prob = next(levels)
    assert ys.shape == xs.shape == prob.shape and reg.shape == (ys.size, 4)
    with pytest.raises(cv2.error):
        next(levels)


def test_crops_from_the_bgr_frame_equal_crops_of_the_normalised_frame():
    bgr = np.random.default_rng(4).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    boxes = np.array([[10.2, 5.7, 40.1, 35.6], [-8.0, 30.0, 20.0, 70.0], [50.5, 10.0, 95.0, 55.0]])
    expected = ops.crop_and_resize(pyramid.normalised_rgb(bgr), boxes, 24)
    crops = ops.crop_and_resize(bgr, boxes, 24, from_bgr=True)
    assert crops.dtype == np.float32 and crops.flags.c_contiguous
    np.testing.assert_allclose(crops, expected, atol=1e-5)
    assert np.all(crops[1, -3:] == 0)  # samples below the frame are zero, as in the normalised frame


def test_pyramid_source_is_twice_the_first_level_and_never_larger_than_the_frame():
    bgr = np.full((1080, 1920, 3), 200, dtype=np.uint8)
    source = pyramid.pyramid_source(bgr, (0.3, 324, 576))
    assert source.shape == (648, 1152, 3) and source.dtype == np.float32
    np.testing.assert_allclose(source, (200 - 127.5) / 128, atol=1e-6)
    assert pyramid.pyramid_source(bgr, (0.6, 648, 1152)).shape == (1080, 1920, 3)  # capped at the frame
    assert pyramid.pyramid_source(bgr, None).shape == (1080, 1920, 3)


def test_shrunk_source_finds_what_full_resolution_pyramids_find():
    settings = DetectorSettings(min_face_size=20)
    with MtcnnDetector(settings) as shrunk, MtcnnDetector(settings, exact_pyramid=True) as exact:
        faces = 0
        for scene in multi_face_scenes():
            mine = shrunk.detect(scene.bgr)
            for reference in exact.detect(scene.bgr):
                if reference.score < 0.9:
                    continue
                faces += 1
                best = max((d.box.iou(reference.box) for d in mine), default=0.0)
                assert best >= 0.8, (scene.background, reference.box)
        assert faces >= 40


def test_a_1080p_frame_keeps_its_faces_and_full_resolution_coordinates():
    small = make_scene(640, 360, faces=[(200, 180, 60, False), (470, 150, 90, True)], background="coffee", seed=2)
    big = cv2.resize(small.bgr, (1920, 1080), interpolation=cv2.INTER_LINEAR)
    with MtcnnDetector(DetectorSettings(min_face_size=40)) as detector:
        found = detector.detect(big)
    for placed in small.faces:
        truth = Box(*[v * 3 for v in placed.box])
        assert max(d.box.iou(truth) for d in found) > 0.6


def test_candidates_go_to_rnet_and_onet_in_bounded_batches():
    batches: dict[str, list[int]] = {}

    class Recording:
        def __init__(self, path, threads):
            self.name, self.session = str(path), open_session(path, threads)

        def run(self, outputs, feeds):
            batches.setdefault(self.name.rsplit("_", 1)[-1], []).append(feeds["input"].shape[0])
            return self.session.run(outputs, feeds)

    noise = np.random.default_rng(5).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    loose = DetectorSettings(min_face_size=12, thresholds=(0.05, 0.05, 0.05), helper_thread=False)
    with MtcnnDetector(loose, open_net=Recording) as detector:
        detector.detect_array(noise)
    rnet = batches["rnet.onnx"]
    assert sum(rnet) > MAX_BATCH  # enough candidates to need more than one batch
    assert max(rnet) <= MAX_BATCH and max(batches["onet.onnx"]) <= MAX_BATCH

import numpy as np
import pytest

from edge_fer.capture.frame import BadFrame, Frame, as_bgr, fit_pixels
from tests.clips import astronaut


def test_frame_holds_a_real_image():
    image = astronaut()
    frame = Frame("cam0", 0, 1.5, 1.7e9, image)
    assert (frame.width, frame.height) == (512, 512)
    with pytest.raises(AttributeError):
        frame.index = 3  # frozen


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"camera": ""}, "camera"),
        ({"index": -1}, "index"),
        ({"t_mono": float("nan")}, "finite"),
        ({"image": np.zeros((4, 4), np.uint8)}, "HxWx3"),
        ({"image": np.zeros((4, 4, 3), np.float32)}, "HxWx3"),
        ({"image": np.zeros((0, 4, 3), np.uint8)}, "HxWx3"),
        ({"scale": (0.0, 1.0)}, "scale"),
        ({"scale": (1.0, float("inf"))}, "scale"),
    ],
)
def test_frame_rejects_bad_fields(kwargs, match):
    fields = {"camera": "cam0", "index": 0, "t_mono": 1.0, "t_wall": 2.0, "image": np.zeros((4, 4, 3), np.uint8)}
    with pytest.raises(ValueError, match=match):
        Frame(**{**fields, **kwargs})


def test_as_bgr_converts_harmless_variants():
    bgr = astronaut()
    gray = bgr[:, :, 1].copy()
    out = as_bgr(gray)
    assert out.shape == (512, 512, 3) and (out[:, :, 0] == gray).all() and (out[:, :, 2] == gray).all()
    assert as_bgr(gray[:, :, None]).shape == (512, 512, 3)
    bgra = np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])
    assert np.array_equal(as_bgr(bgra), bgr)
    strided = bgr[::2, ::2]
    out = as_bgr(strided)
    assert out.flags.c_contiguous and np.array_equal(out, strided)
    assert as_bgr(bgr) is bgr  # already fine: no copy


@pytest.mark.parametrize(
    "image, match",
    [
        (None, "numpy array"),
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((8, 8, 2), np.uint8), "HxWx3"),
        (np.zeros((2, 8, 8, 3), np.uint8), "HxWx3"),
    ],
)
def test_as_bgr_refuses_broken_images(image, match):
    with pytest.raises(BadFrame, match=match):
        as_bgr(image)


def test_fit_pixels_shrinks_only_what_is_over_the_limit_and_says_by_how_much():
    image = np.zeros((4320, 7680, 3), np.uint8)
    fitted, (sx, sy) = fit_pixels(image, 3840 * 2160)
    assert fitted.shape == (2160, 3840, 3) and (sx, sy) == (2.0, 2.0)
    odd, (sx, sy) = fit_pixels(np.zeros((1001, 3001, 3), np.uint8), 1_000_000)
    assert odd.shape[0] * odd.shape[1] <= 1_000_000 and abs(odd.shape[1] / odd.shape[0] - 3001 / 1001) < 0.01
    assert (sx, sy) == (3001 / odd.shape[1], 1001 / odd.shape[0])  # exact per axis, for boxes
    small = astronaut()
    assert fit_pixels(small, 512 * 512) == (small, (1.0, 1.0))
    assert fit_pixels(small, None)[0] is small

"""Camera-like augmentation: each transform does what its name says, keyed by (seed, step), and a share of 0
leaves today's batches exactly as they were."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from export.augment import Augmentation, augment_batch, train_dataset
from export.camera_augment import COL, CameraAugmentation, blur_kernels, camera_batch, camera_mask
from export.data import Split, class_weights
from tests.export.fer_fixtures import face_crop

pytestmark = pytest.mark.export

# Every transform off and the pose still: the camera recipe is then a plain same-size resampling.
NOTHING = CameraAugmentation(
    rotation_deg=0, perspective=0, squash=0, zoom=0, shift=0, flip=False,
    p_occluder=0, p_dark=0, p_blur=0, p_lowres=0, p_noise=0, p_jpeg=0,
)  # fmt: skip


@pytest.fixture(scope="module")
def faces():
    return np.stack([face_crop(label, i) for label in range(7) for i in range(2)])[..., None]


def cam(tf, faces, aug, step=1, size=48):
    return camera_batch(tf.constant(faces), tf.constant([7, step], tf.int64), size, aug).numpy()


def sharpness(images):
    return np.array([cv2.Laplacian(img[..., 0].astype(np.float64), cv2.CV_64F).var() for img in images])


def test_nothing_on_is_the_identity(tf, faces):
    out = cam(tf, faces, NOTHING)
    assert out.shape == faces.shape and np.max(np.abs(out - faces)) < 1e-3


def test_same_seed_same_pixels_other_step_other_pixels(tf, faces):
    aug = CameraAugmentation()
    a, b, c = cam(tf, faces, aug), cam(tf, faces, aug), cam(tf, faces, aug, 2)
    assert np.array_equal(a, b)
    assert np.mean(np.abs(a - c)) > 5
    assert a.min() >= 0 and a.max() <= 255


def test_pose_moves_pixels_but_keeps_the_face(tf, faces):
    out = cam(tf, faces, replace(NOTHING, rotation_deg=30, perspective=0.3, squash=0.2, zoom=0.15, shift=0.08))
    assert np.mean(np.abs(out - faces)) > 5
    for img, face in zip(out, faces.astype(np.float32)):
        assert max(np.corrcoef(img.ravel(), f.ravel())[0, 1] for f in (face, face[:, ::-1])) > 0.3


def test_low_light_is_darker(tf, faces):
    out = cam(tf, faces, replace(NOTHING, p_dark=1, gamma=0))
    assert np.all(out.mean(axis=(1, 2, 3)) < faces.mean(axis=(1, 2, 3)))
    assert out.mean() < 0.8 * faces.mean()


def test_gamma_alone_keeps_the_order_of_grey_levels(tf, faces):
    out = cam(tf, faces, replace(NOTHING, p_dark=1, gain_min=1.0, gamma=0.5))
    assert np.mean(np.abs(out - faces)) > 2
    for img, face in zip(out, faces):
        order = np.argsort(face.ravel(), kind="stable")
        assert np.all(np.diff(img.ravel()[order]) >= -1e-3)  # a monotonic curve


@pytest.mark.parametrize("kind", [0.25, 0.75])  # draws below 0.5 pick the disc, above it the line
def test_blur_kernels_are_normalised_discs_and_lines(tf, kind):
    import tensorflow as tf_

    d = np.full((1, 32), 0.99, np.float32)
    d[0, COL["blur_kind"]] = kind
    d[0, COL["blur_angle"]] = 0.0  # a horizontal line
    k = blur_kernels(tf_, tf_.constant(d), 3, 3.0).numpy()[0]
    assert abs(k.sum() - 1) < 1e-5 and k.shape == (7, 7)
    if kind < 0.5:
        assert np.allclose(k, k.T) and np.allclose(k, k[::-1]) and k[3, 3] > 0 and k[0, 0] == 0
    else:
        assert np.count_nonzero(k[3]) == 7 and np.count_nonzero(k) == 7  # one horizontal row


def test_blur_and_low_resolution_are_blurrier(tf, faces):
    for aug in (replace(NOTHING, p_blur=1), replace(NOTHING, p_lowres=1)):
        out = cam(tf, faces, aug)
        assert np.all(sharpness(out) < 0.7 * sharpness(faces)), aug
        assert abs(out.mean() - faces.mean()) < 3  # blur moves detail, not brightness


def test_noise_is_grain_around_the_same_picture(tf, faces):
    out = cam(tf, faces, replace(NOTHING, p_noise=1, noise_sigma=20))
    diff = out - faces
    assert abs(diff.mean()) < 1.5 and 2 < diff.std() < 20
    assert np.all(sharpness(out) > sharpness(faces))


def test_jpeg_matches_a_real_encoder_at_the_drawn_quality(tf, faces):
    out = cam(tf, faces, replace(NOTHING, p_jpeg=1, jpeg_quality=(15, 15)))
    assert np.mean(np.abs(out - faces)) > 1
    for img, face in zip(out, faces):
        ok, buf = cv2.imencode(".jpg", face[..., 0], [cv2.IMWRITE_JPEG_QUALITY, 15])
        ref = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32)
        assert ok and np.mean(np.abs(img[..., 0] - ref)) < 1.0


def test_occluder_covers_mouth_or_chin_and_never_the_eyes(tf, faces):
    out = cam(tf, faces, replace(NOTHING, p_occluder=1))
    assert np.max(np.abs(out[:, :24] - faces[:, :24])) < 1e-3  # the upper half (eyes at 0.38) untouched
    changed = np.mean(np.abs(out[:, 30:] - faces[:, 30:]) > 2, axis=(1, 2, 3))
    assert np.all(changed > 0.05)


def test_share_picks_an_exact_count_and_leaves_the_others_as_today(tf, faces):
    seed = tf.constant([4, 9], tf.int64)
    chosen = camera_mask(tf, seed, 14, 0.5).numpy()
    assert chosen.sum() == 7
    plain = augment_batch(tf.constant(faces), seed, 48, Augmentation(), 127.5, 127.5).numpy()
    mixed = augment_batch(tf.constant(faces), seed, 48, Augmentation(), 127.5, 127.5, CameraAugmentation(), 0.5)
    mixed = mixed.numpy()
    assert np.array_equal(mixed[~chosen], plain[~chosen])
    assert all(not np.array_equal(m, p) for m, p in zip(mixed[chosen], plain[chosen]))
    assert camera_mask(tf, seed, 14, 1.0).numpy().all() and not camera_mask(tf, seed, 14, 0.0).numpy().any()


def test_share_zero_reproduces_todays_epoch_exactly(tf, faces):
    split = Split(faces, np.repeat(np.arange(7), 2))
    weights = class_weights(split.counts(7), "none")

    def batches(**camera):
        ds = train_dataset(split, 7, weights, epoch=1, batch_size=4, seed=5, out_size=48, aug=Augmentation(),
                           mean=127.5, std=127.5, **camera)  # fmt: skip
        return [b[0].numpy() for b in ds]

    today = batches()
    assert all(np.array_equal(a, b) for a, b in zip(today, batches(camera=CameraAugmentation(), camera_share=0.0)))
    # 0.1 of a batch of 4 rounds to no image: still today's batches (and no empty batch reaches the camera ops)
    assert all(np.array_equal(a, b) for a, b in zip(today, batches(camera=CameraAugmentation(), camera_share=0.1)))
    half = batches(camera=CameraAugmentation(), camera_share=0.5)
    assert all(np.array_equal(a, b) for a, b in zip(half, batches(camera=CameraAugmentation(), camera_share=0.5)))
    assert not any(np.array_equal(a, b) for a, b in zip(today, half))


def test_rgb_and_larger_inputs(tf, faces):
    rgb = np.repeat(faces, 3, axis=3)
    out = cam(tf, rgb, CameraAugmentation(), size=96)
    assert out.shape == (14, 96, 96, 3) and out.min() >= 0 and out.max() <= 255


@pytest.mark.parametrize(
    "bad", [dict(p_blur=1.5), dict(gain_min=0), dict(jpeg_quality=(60, 10)), dict(perspective=1.0)]
)
def test_invalid_ranges_are_refused(bad):
    with pytest.raises(ValueError, match="camera augmentation"):
        CameraAugmentation(**bad)


def test_camera_sheet_draws_every_row_from_the_pipeline_crop(tf, tmp_path, capsys):
    from export.cli import main

    out = tmp_path / "sheet.png"
    assert main(["camera-sheet", "--out", str(out), "--columns", "3"]) == 0
    sheet = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    assert sheet.shape == (9 * 96, 100 + 4 * 96)  # 9 rows of 48 px tiles shown twice as large, a caption column
    source = sheet[:96, 100:196]
    rows = [sheet[r * 96 : (r + 1) * 96, 100:] for r in range(9)]
    assert all(np.array_equal(row[:, :96], source) for row in rows)  # the source face starts every row
    assert all(np.mean(np.abs(row[:, 96:].astype(float) - np.tile(source, 3))) > 2 for row in rows)

    (tmp_path / "bad.png").write_text("not an image")
    assert main(["camera-sheet", "--out", str(out), str(tmp_path / "bad.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"export failed: {tmp_path / 'bad.png'}: not a readable image"]

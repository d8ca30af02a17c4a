"""Loading FER2013 folders and Kaggle's csv into memory, hold-out splits and class weights."""

import re

import numpy as np
import pytest

from export.data import FER2013_CSV_LABELS, class_weights, load_dataset, stratified_holdout
from export.emotion import CANONICAL_LABELS
from tests.export.fer_fixtures import face_crop, write_fer2013_csv, write_folder_set


@pytest.fixture(scope="module")
def folder_set(tmp_path_factory):
    return write_folder_set(tmp_path_factory.mktemp("fer"))


def test_folders_match_labels_case_insensitively_and_hold_out_per_label(folder_set):
    data = load_dataset(folder_set, "gray", 48, seed=0)
    assert data.labels == CANONICAL_LABELS
    assert data.train.images.shape == (35, 48, 48, 1)
    assert data.train.counts(7).tolist() == [5] * 7
    assert data.val.counts(7).tolist() == [1] * 7
    assert "held out" in data.val_source
    every = sorted(map(bytes, np.concatenate([data.train.images, data.val.images])))
    assert every == sorted(face_crop(lb, i).tobytes() for lb in range(7) for i in range(6))
    again = load_dataset(folder_set, "gray", 48, seed=0)
    assert np.array_equal(again.val.images, data.val.images)


def test_holdout_depends_on_the_seed():
    labels = np.repeat(np.arange(7), 50)
    a = stratified_holdout(labels, 0.2, seed=1)[1]
    b = stratified_holdout(labels, 0.2, seed=2)[1]
    assert len(a) == len(b) == 70
    assert np.bincount(labels[a]).tolist() == [10] * 7
    assert not np.array_equal(a, b)


def test_val_folder_is_used_and_rgb_and_resize(tmp_path):
    root = write_folder_set(tmp_path, per_label=3)
    write_folder_set(tmp_path, per_label=2, split="val")
    data = load_dataset(root, "rgb", 32, limit_per_class=2)
    assert data.val_source == "val/ folder"
    assert data.train.images.shape == (14, 32, 32, 3)  # 48 px images are larger than the input: resized
    assert data.val.counts(7).tolist() == [2] * 7
    assert np.array_equal(data.train.images[..., 0], data.train.images[..., 2])


def test_csv_maps_kaggle_indices_to_canonical_labels(tmp_path):
    path = write_fer2013_csv(tmp_path / "fer2013.csv", {"Training": 3, "PublicTest": 1, "PrivateTest": 2})
    data = load_dataset(tmp_path, "gray", 48)
    assert data.labels == CANONICAL_LABELS
    assert data.val_source == "PublicTest rows"
    assert len(data.train) == 21 and len(data.val) == 7  # PrivateTest rows are held back
    for csv_index, name in enumerate(FER2013_CSV_LABELS):
        first = np.flatnonzero(data.train.labels == CANONICAL_LABELS.index(name))[0]
        assert np.array_equal(data.train.images[first, :, :, 0], face_crop(csv_index, 0))
    assert load_dataset(path, "gray", 64).train.images.shape == (21, 48, 48, 1)  # kept native, upsampled later


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("emotion,pixels\n0,1 2 3 4,Training\n", "missing column(s) ['Usage']"),
        ("emotion,pixels,Usage\n9,1 2 3 4,Training\n", "bad emotion or pixels"),
        ("emotion,pixels,Usage\n0,1 2 3,Training\n", "3 pixels is not a square image"),
    ],
)
def test_bad_csv_names_the_problem(tmp_path, content, message):
    path = tmp_path / "fer2013.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_dataset(path, "gray", 48)


def test_unknown_label_folder_and_missing_data_are_refused(tmp_path):
    (tmp_path / "train" / "contempt").mkdir(parents=True)
    with pytest.raises(ValueError, match="'contempt' is not an emotion label"):
        load_dataset(tmp_path, "gray", 48)
    with pytest.raises(ValueError, match="no such file or folder"):
        load_dataset(tmp_path / "missing", "gray", 48)


def test_class_weights_keep_the_mean_sample_weight_at_one():
    counts = np.array([4000, 400, 4000, 7200, 5000, 4800, 3200])
    for mode in ("none", "balanced", "sqrt"):
        w = class_weights(counts, mode)
        assert (w * counts).sum() / counts.sum() == pytest.approx(1.0)
    balanced = class_weights(counts, "balanced")
    assert balanced[1] / balanced[3] == pytest.approx(7200 / 400)
    assert class_weights(counts, "sqrt")[1] / class_weights(counts, "sqrt")[3] == pytest.approx((7200 / 400) ** 0.5)
    assert np.all(class_weights(counts, "none") == 1.0)
    assert class_weights(np.array([5, 0, 5]), "balanced")[1] == 0.0

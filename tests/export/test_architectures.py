"""The networks: the report's seed CNN as it was (softmax fixed), and the compact family."""

import cv2
import numpy as np
import pytest

from export.architectures import ARCHITECTURES, build_model, get_architecture
from tests.export.fer_fixtures import face_crop

pytestmark = pytest.mark.export

# Conv 11x11x3x32, 9x9x32x16, 7x7x16x16 with biases; BN (4 per channel); 5*5*16 -> 4096 -> 4096 -> 7.
SEED_PARAMS = (
    (11 * 11 * 3 * 32 + 32) + (9 * 9 * 32 * 16 + 16) + (7 * 7 * 16 * 16 + 16)
    + 4 * (32 + 16 + 16)
    + (400 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 7 + 7)
)  # fmt: skip


def faces(size: int, channels: int) -> np.ndarray:
    crops = [cv2.resize(face_crop(label, 0), (size, size)) for label in (0, 3)]
    x = np.stack(crops)[..., None].astype(np.float32)
    return np.repeat(x, channels, axis=3)


def test_seed_is_the_reports_network_with_a_softmax_output(tf):
    model = build_model("seed")
    assert model.count_params() == SEED_PARAMS
    assert 18.4e6 < SEED_PARAMS < 18.6e6
    assert tuple(model.input_shape) == (None, 152, 152, 3)
    sizes = [model.get_layer(f"pool{i}").output.shape[1] for i in (1, 2, 3)]
    assert model.get_layer("conv1").output.shape[1] == 38 and sizes == [19, 10, 5]
    assert model.layers[-1].get_config()["activation"] == "softmax"
    assert "dropout" not in [layer.__class__.__name__.lower() for layer in model.layers]
    probs = np.asarray(model(faces(152, 3) / 255.0, training=False))
    assert probs.shape == (2, 7)
    assert np.all(probs >= 0) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("compact", 1.1e6, 1.4e6), ("compact-deep", 2.2e6, 2.6e6), ("compact-vgg", 1.1e6, 1.3e6),
     ("compact-small", 0.6e6, 0.8e6)],
)  # fmt: skip
def test_compact_networks_take_48px_gray_and_output_probabilities(tf, name, low, high):
    arch = get_architecture(name)
    assert (arch.input_size, arch.color, arch.mean, arch.std) == (48, "gray", 127.5, 127.5)
    model = build_model(name)
    assert low < model.count_params() < high
    probs = np.asarray(model((faces(48, 1) - 127.5) / 127.5, training=False))
    assert probs.shape == (2, 7) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_global_pooling_lets_compact_take_another_size_and_label_count(tf):
    model = build_model("compact", input_size=64, classes=6)
    assert tuple(model.input_shape) == (None, 64, 64, 1)
    assert np.asarray(model(faces(64, 1), training=False)).shape == (2, 6)


def test_unknown_architecture_lists_the_choices():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'; choose one of seed, compact"):
        get_architecture("resnet")
    assert set(ARCHITECTURES) >= {"seed", "compact"}

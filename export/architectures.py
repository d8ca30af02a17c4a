"""Emotion classifier architectures that ``python -m export train`` can build.

Each entry pairs a builder with the input contract the runtime will read from the exported ONNX
metadata (size, colour, normalisation), so a network and the way its pixels are prepared can never
drift apart. Keras is imported inside the builders: listing the names stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    """A named network and the input it was designed for."""

    name: str
    input_size: int
    color: str  # gray | rgb
    mean: float
    std: float
    summary: str
    build: Callable[..., object]  # (input_size, classes) -> keras.Model

    def __post_init__(self) -> None:
        if self.color not in ("gray", "rgb"):
            raise ValueError(f"{self.name}: color must be gray or rgb, not {self.color!r}")
        if self.input_size < 16:
            raise ValueError(f"{self.name}: input size {self.input_size} is too small")
        if self.std == 0:
            raise ValueError(f"{self.name}: std must not be zero")

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3


def _layers():
    import keras

    return keras, keras.layers


def build_seed(input_size: int = 152, classes: int = 7):
    """The report's DeepFace-inspired CNN, kept layer for layer except its output activation.

    The report put ReLU on the 7-way output under categorical cross-entropy, which lets scores go
    to zero and stall; softmax is the only change. No dropout, as in the report.
    """
    keras, layers = _layers()
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = inputs
    for i, (filters, kernel, stride) in enumerate([(32, 11, 4), (16, 9, 1), (16, 7, 1)], start=1):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc1")(x)
    x = layers.Dense(4096, activation="relu", name="fc2")(x)
    outputs = layers.Dense(classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="seed")


# Keras defaults BatchNorm's moving averages to momentum 0.99, which takes several hundred steps to
# forget: short runs (trials on a subset, the first epochs) then evaluate with statistics of much older
# weights. Measured on an 8-epoch trial of 3,436 FER2013 images (424 steps): identical training, validation
# accuracy 0.345 with 0.99 and 0.411 with 0.9, which follows the weights within a few dozen steps.
BN_MOMENTUM = 0.9


def _bn(name: str):
    _, layers = _layers()
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def _conv_bn_relu(x, filters: int, name: str, stride: int = 1):
    _, layers = _layers()
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = _bn(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _squeeze_excite(x, name: str, ratio: int = 8):
    """Channel attention: a few thousand parameters that let late stages weight features per face."""
    _, layers = _layers()
    channels = int(x.shape[-1])
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_pool")(x)
    s = layers.Dense(max(8, channels // ratio), activation="relu", name=f"{name}_se_reduce")(s)
    s = layers.Dense(channels, activation="sigmoid", name=f"{name}_se_expand")(s)
    return layers.Multiply(name=f"{name}_se_scale")([x, s])


def _residual_block(x, filters: int, name: str, se: bool):
    _, layers = _layers()
    shortcut = x
    y = _conv_bn_relu(x, filters, f"{name}_a")
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_b_conv")(y)
    y = _bn(f"{name}_b_bn")(y)
    if se:
        y = _squeeze_excite(y, name)
    if int(x.shape[-1]) != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj_conv")(x)
        shortcut = _bn(f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def _head(x, classes: int, dropout: float):
    _, layers = _layers()
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(classes, activation="softmax", name="probabilities")(x)


def build_vgg(input_size: int = 48, classes: int = 7, widths=(32, 64, 128, 256), dropout: float = 0.3):
    """Four blocks of two 3x3 convs: the 1.2 M-parameter baseline the project measured (0.643 val)."""
    keras, layers = _layers()
    inputs = keras.Input((input_size, input_size, 1), name="image")
    x = inputs
    for b, filters in enumerate(widths, start=1):
        x = _conv_bn_relu(x, filters, f"b{b}c1")
        x = _conv_bn_relu(x, filters, f"b{b}c2")
        x = layers.MaxPooling2D(2, name=f"b{b}_pool")(x)
    return keras.Model(inputs, _head(x, classes, dropout), name="compact_vgg")


def build_residual(
    input_size: int = 48,
    classes: int = 7,
    stem: int = 32,
    stages=((64, 1), (128, 1), (256, 1)),
    se: bool = True,
    dropout: float = 0.3,
    name: str = "compact",
):
    """VGG-style stem at full resolution, then residual SE stages after each 2x max-pool.

    The full-resolution stem keeps the fine detail of 48 px faces (mouth corners, brows) where
    convolutions are most expensive, so it stays narrow; depth and width go to the 12x12 and 6x6
    stages, where a 3x3 conv costs a sixteenth as much. Residual connections and squeeze-excite
    make the extra depth train in few epochs without changing the per-face cost much.
    """
    keras, layers = _layers()
    inputs = keras.Input((input_size, input_size, 1), name="image")
    x = _conv_bn_relu(inputs, stem, "stem1")
    x = _conv_bn_relu(x, stem, "stem2")
    for s, (filters, blocks) in enumerate(stages, start=1):
        x = layers.MaxPooling2D(2, name=f"s{s}_pool")(x)
        for b in range(1, blocks + 1):
            x = _residual_block(x, filters, f"s{s}b{b}", se)
    return keras.Model(inputs, _head(x, classes, dropout), name=name)


def _compact_deep(input_size: int = 48, classes: int = 7):
    return build_residual(input_size, classes, stages=((64, 1), (128, 1), (256, 2)), name="compact_deep")


def _compact_small(input_size: int = 48, classes: int = 7):
    return build_residual(input_size, classes, stem=24, stages=((48, 1), (96, 1), (192, 1)), name="compact_small")


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "seed",
            152,
            "rgb",
            0.0,
            255.0,
            "the report's DeepFace-inspired CNN (3 conv + 2x4096 dense, ~18.5 M params), softmax output",
            build_seed,
        ),
        Architecture(
            "compact",
            48,
            "gray",
            127.5,
            127.5,
            "residual SE net: 2-conv stem at 48 px, one block per stage 64/128/256 (~1.2 M params)",
            build_residual,
        ),
        Architecture(
            "compact-deep",
            48,
            "gray",
            127.5,
            127.5,
            "compact with a second 256-wide block at 6x6 (~2.4 M params), for use without flip averaging",
            _compact_deep,
        ),
        Architecture(
            "compact-vgg",
            48,
            "gray",
            127.5,
            127.5,
            "VGG-style 4x2 3x3 convs 32-256, global pooling (~1.2 M params), the measured baseline",
            build_vgg,
        ),
        Architecture(
            "compact-small",
            48,
            "gray",
            127.5,
            127.5,
            "narrower residual SE net (~0.5 M params) for ensembles and flip averaging on slow CPUs",
            _compact_small,
        ),
    )
}


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}") from None


def build_model(name: str, input_size: int | None = None, classes: int = 7):
    """A fresh, uncompiled model; ``input_size`` overrides the architecture's default."""
    arch = get_architecture(name)
    return arch.build(input_size or arch.input_size, classes)

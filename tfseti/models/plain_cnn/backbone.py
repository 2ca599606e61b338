"""Plain CNN backbones: ``stages`` of two 3x3 Conv-BN-swish layers, each stage but the last
followed by 2x2 max pooling.

Why a plain CNN beside the EfficientNets: on the ``dedoppler`` view (drift-rate x channel maps,
``tfseti.data.drift_sums``) a needle is a peak a few pixels wide, and what the network has to
learn is local (does the peak sit at the same place in the ON panels and not in the OFF
panels, is it needle-shaped or burst-shaped). A small VGG-style stack keeps full resolution in its
first stage (the first conv's stride is ``stem_strides``), has no depthwise convolutions (which
run slowly on CPUs), and trains in minutes on two CPU cores; measured on the detection benchmark
in the ``cpu`` recipe (``tfseti/recipes/cpu.toml``). No pretrained weights exist for it (``weights`` must be ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras


@dataclass(frozen=True)
class PlainCNNSpec:
    """A plain CNN's name and the filters of each stage (two convolutions per stage)."""

    name: str
    widths: tuple[int, ...]


PLAIN_CNN_SPECS = {spec.name: spec for spec in (
    PlainCNNSpec("plain_cnn_s", widths=(32, 64, 96, 128)),
    PlainCNNSpec("plain_cnn_m", widths=(48, 96, 160, 256)),
)}


def _conv_bn_act(x, filters: int, strides, name: str):
    x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.Activation("swish", name=f"{name}_act")(x)


def build_plain_cnn_backbone(spec: PlainCNNSpec, input_shape: tuple[int, int, int], stem_strides=(1, 1),
                             drop_connect_rate: float = 0.0, weights: str | None = None
                             ) -> keras.Model:
    """Feature extractor ``(B, H, W, C) → (B, H', W', spec.widths[-1])`` named ``backbone``
    (``spec``: one of :data:`PLAIN_CNN_SPECS`, as ``create_model`` finds it by name).

    ``stem_strides`` is the stride of the very first convolution (``(1, 1)``: full resolution);
    ``drop_connect_rate`` is unused (no residual blocks).
    """
    if weights is not None:
        raise ValueError(f"weights: {spec.name} has no pretrained weights; expected None, got "
                         f"{weights!r}")
    widths = spec.widths
    image = keras.Input(input_shape, name="image")
    x = image
    for stage, filters in enumerate(widths):
        x = _conv_bn_act(x, filters, tuple(stem_strides) if stage == 0 else (1, 1), f"stage{stage}a")
        x = _conv_bn_act(x, filters, (1, 1), f"stage{stage}b")
        if stage < len(widths) - 1:
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"stage{stage}_pool")(x)
    return keras.Model(image, x, name="backbone")

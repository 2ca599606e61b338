"""Stem changes: first-conv strides, a pre-stem Conv-BN-Act stack, input-channel adaptation.

Thin drifting lines are a pixel wide; the seeds kept resolution early (stem stride (1, 2) or
(1, 1), or small convs before the backbone) and kept pretrained features for 1- or 2-channel
inputs by adapting the stem kernel as timm's ``adapt_input_conv`` does.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from .graph_edit import layer_config


def adapt_input_conv(kernel: np.ndarray, in_chans: int) -> np.ndarray:
    """Adapt a Keras conv kernel ``(kh, kw, 3, out)`` trained on RGB to ``in_chans`` inputs.

    As timm: 1 channel → sum over RGB (a grey image gives the RGB model's response to the
    replicated image); C ≠ 3 → RGB repeated to C channels and scaled by 3 / C (so C = 3k
    replicated inputs again give the RGB response).
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 4 or kernel.shape[2] != 3:
        raise ValueError(f"adapt_input_conv: expected a (kh, kw, 3, out) kernel, got shape "
                         f"{kernel.shape}")
    if in_chans < 1:
        raise ValueError(f"adapt_input_conv: in_chans must be >= 1, got {in_chans}")
    if in_chans == 3:
        return kernel
    if in_chans == 1:
        return kernel.sum(axis=2, keepdims=True)
    repeats = math.ceil(in_chans / 3)
    return (np.tile(kernel, (1, 1, repeats, 1))[:, :, :in_chans] * (3.0 / in_chans)).astype(
        kernel.dtype)


def same_padding(size: int, stride: int, kernel: int = 3) -> tuple[int, int]:
    """TF "SAME" padding ``(before, after)`` of one axis — what Keras' ``correct_pad`` gives the
    EfficientNet V1 stem for stride 2, and a centred (1, 1) for stride 1."""
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def set_stem_strides(config: dict, strides: tuple[int, int], spatial: tuple[int, int],
                     conv: str = "stem_conv", pad: str | None = None) -> dict:
    """Set the stem conv's strides in a functional config; with an explicit padding layer
    (V1's ``stem_conv_pad`` before a 'valid' conv) also set its padding for ``spatial``."""
    conv_config = layer_config(config, conv)["config"]
    conv_config["strides"] = tuple(strides)
    if pad is not None:
        kernel = conv_config["kernel_size"]
        layer_config(config, pad)["config"]["padding"] = tuple(
            same_padding(n, s, k) for n, s, k in zip(spatial, strides, kernel))
    return config


def pre_stem_stack(x, channels: tuple[int, ...], activation: str = "swish"):
    """3x3 stride-1 Conv-BN-Act layers at full resolution before the backbone."""
    for i, filters in enumerate(channels):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                name=f"pre_stem{i}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"pre_stem{i}_bn")(x)
        x = keras.layers.Activation(activation, name=f"pre_stem{i}_act")(x)
    return x

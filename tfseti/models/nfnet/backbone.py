"""Normalisation-free feature extractors (NF-ResNet, NF-RegNet, ECA-NFNet), built layer by layer
as timm's ``NormFreeNet`` builds them, with the same numbers (channel rounding, β / α
bookkeeping, attention gain, drop-path schedule).

Why no BatchNorm matters here: the winning team found NF networks followed the leaderboard
better than BatchNorm networks under the train/test shift, where BatchNorm's moving statistics
describe the training distribution.

Layer names are timm's module paths with ``.`` → ``_`` (``stages.2.4.conv2`` is layer
``stages_2_4_conv2``), so ``tfseti.models.convert_timm`` maps a timm state dict by name.
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np

from .layers import NONLINEARITY_GAMMA, Scale, ScaledStdConv2D, TorchMaxPool2D
from .specs import NFSpec, make_divisible


def _eca_kernel_size(channels: int, gamma: float = 2, beta: float = 1) -> int:
    # timm EcaModule: the 1-D kernel grows with log2(channels), odd, at least 3.
    t = int(abs(math.log(channels, 2) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)


class _Builder:
    """Builds one backbone's graph; holds what every layer shares (spec, activation gamma)."""

    def __init__(self, spec: NFSpec):
        if spec.act not in NONLINEARITY_GAMMA:
            raise ValueError(f"activation {spec.act!r}: expected one of {sorted(NONLINEARITY_GAMMA)}")
        self.spec = spec
        self.gamma = NONLINEARITY_GAMMA[spec.act]

    def conv(self, x, filters: int, kernel: int, name: str, strides=1, groups: int = 1,
             gain_init: float = 1.0):
        return ScaledStdConv2D(filters, kernel, strides=strides, groups=groups, gamma=self.gamma,
                               eps=self.spec.std_conv_eps, gain_init=gain_init, name=name)(x)

    def act(self, x, name: str):
        return keras.layers.Activation(self.spec.act, name=name)(x)

    def stem(self, x, strides):
        spec, out = self.spec, self.spec.stem_channels
        if spec.stem_type == "deep_quad":        # NFNet: four 3x3 convs, strides 2, 1, 1, 2
            widths, conv_strides = (out // 8, out // 4, out // 2, out), (strides, 1, 1, 2)
            for i, (filters, s) in enumerate(zip(widths, conv_strides)):
                x = self.conv(x, filters, 3, f"stem_conv{i + 1}", strides=s)
                if i < len(widths) - 1:
                    x = self.act(x, f"stem_act{i + 2}")
            return x
        if spec.stem_type == "3x3":              # RegNet
            return self.conv(x, out, 3, "stem_conv", strides=strides)
        if spec.stem_type == "7x7_pool":         # ResNet
            x = self.conv(x, out, 7, "stem_conv", strides=strides)
            return TorchMaxPool2D(3, 2, 1, name="stem_pool")(x)
        raise ValueError(f"stem_type {spec.stem_type!r}: expected deep_quad, 3x3 or 7x7_pool")

    def attention(self, x, name: str):
        """SE or ECA channel attention of ``x``, times the attention gain."""
        channels = int(x.shape[-1])
        if self.spec.attn == "se":
            reduced = make_divisible(channels * self.spec.attn_rd_ratio,
                                     self.spec.attn_rd_divisor, round_limit=0.0)
            s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
            s = keras.layers.Conv2D(reduced, 1, name=f"{name}_fc1")(s)
            s = keras.layers.Activation("relu", name=f"{name}_act")(s)
            s = keras.layers.Conv2D(channels, 1, name=f"{name}_fc2")(s)
        elif self.spec.attn == "eca":
            s = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
            s = keras.layers.Reshape((channels, 1), name=f"{name}_to_1d")(s)
            s = keras.layers.Conv1D(1, _eca_kernel_size(channels), padding="same",
                                    use_bias=False, name=f"{name}_conv")(s)
            s = keras.layers.Reshape((1, 1, channels), name=f"{name}_to_2d")(s)
        else:
            raise ValueError(f"attn {self.spec.attn!r}: expected se, eca or None")
        s = keras.layers.Activation("sigmoid", name=f"{name}_gate")(s)
        x = keras.layers.Multiply(name=f"{name}_mul")([x, s])
        return Scale(self.spec.attn_gain, name=f"{name}_gain")(x)

    def block(self, x, name: str, out_chs: int, stride: int, beta: float, bottle_ratio: float,
              drop_rate: float):
        """timm ``NormFreeBlock`` (pre-activation): ``x + α · branch(β · act(x))``; the
        shortcut is an avg-pool + 1x1 conv of ``β · act(x)`` where the shape changes."""
        spec, in_chs = self.spec, int(x.shape[-1])
        out = self.act(x, f"{name}_act1")
        if beta != 1.0:
            out = Scale(beta, name=f"{name}_beta")(out)
        shortcut = x
        if in_chs != out_chs or stride != 1:
            down = out
            if stride > 1:   # ceil_mode average, padding not counted: Keras "same" pooling
                down = keras.layers.AveragePooling2D(2, stride, padding="same",
                                                     name=f"{name}_downsample_pool")(down)
            shortcut = self.conv(down, out_chs, 1, f"{name}_downsample_conv")
        mid = make_divisible((in_chs if spec.reg else out_chs) * bottle_ratio, spec.ch_div)
        groups = mid // spec.group_size if spec.group_size else 1
        if spec.group_size and spec.group_size % spec.ch_div == 0:
            mid = spec.group_size * groups
        out = self.conv(out, mid, 1, f"{name}_conv1")
        out = self.conv(self.act(out, f"{name}_act2"), mid, 3, f"{name}_conv2", strides=stride,
                        groups=groups)
        if spec.extra_conv:
            out = self.conv(self.act(out, f"{name}_act2b"), mid, 3, f"{name}_conv2b",
                            groups=groups)
        if spec.reg and spec.attn:
            out = self.attention(out, f"{name}_attn")
        # gain 0: at initialisation every block is the identity (timm's default, skipinit off)
        out = self.conv(self.act(out, f"{name}_act3"), out_chs, 1, f"{name}_conv3",
                        gain_init=0.0)
        if not spec.reg and spec.attn:
            out = self.attention(out, f"{name}_attn_last")
        if drop_rate > 0:
            # stochastic depth as timm's DropPath (and the Keras EfficientNets): one mask value
            # per sample drops the whole branch, the kept ones scaled by 1 / (1 - rate)
            out = keras.layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1),
                                       name=f"{name}_drop_path")(out)
        out = Scale(spec.alpha, name=f"{name}_alpha")(out)
        return keras.layers.Add(name=f"{name}_add")([out, shortcut])

    def __call__(self, image, stem_strides, drop_path_rate: float):
        spec = self.spec
        x = self.stem(image, stem_strides)
        total = sum(spec.depths)
        # timm calculate_drop_path_rates: linear from 0 to the rate over all blocks
        rates = np.linspace(0.0, drop_path_rate, total) if total > 1 else np.zeros(total)
        expected_var, index = 1.0, 0
        for stage, depth in enumerate(spec.depths):
            stride = 1 if stage == 0 and spec.stem_stride > 2 else 2
            out_chs = make_divisible(spec.channels[stage] * spec.width_factor, spec.ch_div)
            for b in range(depth):
                first = stage == 0 and b == 0
                x = self.block(x, f"stages_{stage}_{b}", out_chs,
                               stride=stride if b == 0 else 1,
                               beta=1.0 / math.sqrt(expected_var),
                               bottle_ratio=1.0 if spec.reg and first else spec.bottle_ratio,
                               drop_rate=float(rates[index]))
                if b == 0:   # the expected variance restarts after each stage's first block
                    expected_var = 1.0
                expected_var += spec.alpha ** 2
                index += 1
        if spec.num_features:
            x = self.conv(x, make_divisible(spec.num_features * spec.width_factor, spec.ch_div),
                          1, "final_conv")
        return self.act(x, "final_act")


def check_weights_argument(weights, name: str) -> None:
    if weights is None:
        return
    if weights == "imagenet":
        raise ValueError(
            f"weights: {name} has no Keras ImageNet weights to download; convert timm's "
            f"checkpoint once with `python -m tfseti.models.convert_timm CHECKPOINT.safetensors "
            f"--name {name} --out {name}.weights.h5` and give that file")
    if "://" not in weights and not os.path.isfile(weights):
        raise ValueError(f"weights: no file {weights!r}; expected None or a .weights.h5 of the "
                         f"3-channel {name} backbone (python -m tfseti.models.convert_timm)")


# Where a Keras .weights.h5 keeps the first ScaledStdConv2D's kernel: the stem's first conv.
# (Keras names a weights file's groups by class and order, not by layer name.)
_STEM_KERNEL_KEY = "layers/scaled_std_conv2d/vars/0"


def weights_channels(path: str) -> int:
    """Input channels of the backbone saved in ``path`` (3 for ImageNet checkpoints; a
    competitor's checkpoint may have 1 or 2)."""
    import fsspec
    import h5py

    with fsspec.open(path, "rb") as raw, h5py.File(raw, "r") as f:
        if _STEM_KERNEL_KEY not in f:
            raise ValueError(f"weights: {path!r} is not a .weights.h5 of an NF backbone (no "
                             f"{_STEM_KERNEL_KEY}); write one with python -m "
                             "tfseti.models.convert_timm")
        return int(f[_STEM_KERNEL_KEY].shape[2])


def build_nf_layers(spec: NFSpec, input_shape, stem_strides=(2, 2),
                    drop_connect_rate: float = 0.0) -> keras.Model:
    """The backbone graph of ``spec`` with fresh weights."""
    image = keras.Input(tuple(input_shape), name="image")
    features = _Builder(spec)(image, tuple(stem_strides), drop_connect_rate)
    return keras.Model(image, features, name="backbone")


def build_nf_backbone(spec: NFSpec, input_shape: tuple[int, int, int], stem_strides=(2, 2),
                      drop_connect_rate: float = 0.0, weights: str | None = None) -> keras.Model:
    """Feature extractor ``(B, H, W, C) → (B, H', W', F)`` named ``backbone`` (``spec``: one of
    ``NF_SPECS``, as ``create_model`` finds it by name).

    ``drop_connect_rate`` is timm's ``drop_path_rate`` (stochastic depth, linear over blocks).
    ``weights``: None or a ``.weights.h5`` of the 3-channel backbone (what
    ``python -m tfseti.models.convert_timm`` writes); the stem kernel is adapted to the channel
    count as timm's ``adapt_input_conv`` does.
    """
    check_weights_argument(weights, spec.timm_name)
    backbone = build_nf_layers(spec, input_shape, stem_strides, drop_connect_rate)
    if weights is not None:
        from ..applications import transfer_weights

        source = build_nf_layers(spec, (*input_shape[:2], weights_channels(weights)), (2, 2), 0.0)
        source.load_weights(weights)
        transfer_weights(source, backbone, stem_conv=spec.stem_conv)
        del source
    return backbone

"""ResNet50 / ResNet101 feature extractors built from ``keras.applications`` (seed 004: a
Keras/TPU ResNet50 with an attention head, ``pooling = "spatial_attention"``).

Built as the EfficientNets are (``tfseti.models.applications``): the application's functional
config is edited — input shape and channels, global dtype policy, stem strides — and rebuilt
with ``keras.Model.from_config``; pretrained weights are loaded into the plain 3-channel
application and copied across by layer name, the stem kernel adapted to the channel count.

The stem is ``conv1_pad`` (ZeroPadding2D) → ``conv1_conv`` (7x7, 'valid', stride 2) → BN →
ReLU → ``pool1_pad`` → ``pool1_pool`` (3x3 max, stride 2). Its padding stays symmetric,
``kernel // 2`` a side, for every stride: that is the geometry the ImageNet weights were
trained with (Keras' (3, 3), PyTorch's / timm's ``padding=3``), and for an odd kernel it gives
TF "SAME" output sizes, ``ceil(n / stride)``, for any stride and any size. (TF "SAME" itself,
``stems.same_padding``, pads (2, 3) for stride 2 on even sizes: the same size, but a grid one
pixel off the one the weights learned.)

ResNets have no stochastic depth: ``drop_connect_rate`` is accepted and unused.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from .. import applications
from ..graph_edit import layer_config
from ..stems import set_stem_strides

STEM_CONV = "conv1_conv"
STEM_PAD = "conv1_pad"


@dataclass(frozen=True)
class ResNetSpec:
    constructor: str       # attribute of keras.applications
    default_size: int      # the resolution the ImageNet weights were trained at
    # timm's architecture of the same depth and weight shapes. Keras' ResNets are the original
    # v1 (a block's stride on its first 1x1 conv); timm's resnet50/101 are "v1.5" (stride on
    # the 3x3): the same weight shapes and names up to renaming, not the same function.
    timm_name: str


RESNET_SPECS = {
    "resnet50": ResNetSpec("ResNet50", 224, "resnet50"),
    "resnet101": ResNetSpec("ResNet101", 224, "resnet101"),
}


def _symmetric_stem_padding(config: dict) -> dict:
    """``kernel // 2`` zeros each side of each axis before the 'valid' stem conv."""
    kernel = layer_config(config, STEM_CONV)["config"]["kernel_size"]
    layer_config(config, STEM_PAD)["config"]["padding"] = tuple((k // 2, k // 2) for k in kernel)
    return config


def backbone_config(spec: ResNetSpec, input_shape: tuple[int, int, int],
                    stem_strides=(2, 2)) -> dict:
    """The edited functional config of the backbone ``spec`` for ``input_shape`` (H, W, C)."""
    config = applications.edited_config(spec.constructor, tuple(input_shape))
    config = set_stem_strides(config, stem_strides, tuple(input_shape[:2]), conv=STEM_CONV)
    return _symmetric_stem_padding(config)


def build_resnet_backbone(spec: ResNetSpec, input_shape: tuple[int, int, int], stem_strides=(2, 2),
                          drop_connect_rate: float = 0.0, weights: str | None = None
                          ) -> keras.Model:
    """Feature extractor ``(B, H, W, C) → (B, H', W', 2048)`` named ``backbone`` (``spec``: one
    of :data:`RESNET_SPECS`, as ``create_model`` finds it by name).

    stem_strides: strides of ``conv1_conv`` (the max-pool after it keeps stride 2).
    drop_connect_rate: unused (ResNets have no stochastic depth).
    weights: None, "imagenet" (downloaded by Keras) or a weights file of the 3-channel
    ``keras.applications`` ResNet with ``include_top=False``; loads into any channel count.
    """
    del drop_connect_rate  # no stochastic depth in these ResNets
    applications.check_weights(weights, spec.constructor)
    return applications.build_from_config(backbone_config(spec, input_shape, stem_strides),
                                          spec.constructor, stem_conv=STEM_CONV, weights=weights)

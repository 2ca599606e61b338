"""EfficientNet V1 / V2 feature extractors built from ``keras.applications``.

The application's functional config is edited (``tfseti.models.applications``: input shape and
channels, global dtype policy, preprocessing layers removed — the pipeline normalises), then
here its stem strides and drop-connect rate, and rebuilt with ``keras.Model.from_config``. Layer
names and weight shapes (except an adapted stem kernel) are those of the application, so
pretrained weights load into every variant: they are loaded into the plain 3-channel
application the Keras way, then copied across by layer name.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from .. import applications
from ..stems import set_stem_strides

STEM_CONV = "stem_conv"
# The drop_connect_rate the public EfficientNet*/EfficientNetV2* constructors build with (not an
# argument of theirs); a test checks it against Keras' internal builders.
KERAS_DROP_CONNECT_RATE = 0.2


@dataclass(frozen=True)
class BackboneSpec:
    constructor: str       # attribute of keras.applications
    family: str            # "v1" | "v2"
    default_size: int      # the resolution the ImageNet weights were trained at
    timm_name: str         # timm's equivalent architecture (TF-ported, same padding)

    @property
    def stem_pad(self) -> str | None:
        # V1 pads explicitly before a 'valid' stem conv; V2 uses 'same'.
        return "stem_conv_pad" if self.family == "v1" else None

    @property
    def application_kwargs(self) -> dict:
        # V2 has its preprocessing behind a flag; V1's layers are removed from the graph.
        return {"include_preprocessing": False} if self.family == "v2" else {}


EFFICIENTNET_SPECS = {
    **{f"efficientnet_b{i}": BackboneSpec(f"EfficientNetB{i}", "v1", size, f"tf_efficientnet_b{i}")
       for i, size in enumerate((224, 240, 260, 300, 380, 456, 528, 600))},
    **{f"efficientnetv2_b{i}": BackboneSpec(f"EfficientNetV2B{i}", "v2", size,
                                            f"tf_efficientnetv2_b{i}")
       for i, size in enumerate((224, 240, 260, 300))},
    **{f"efficientnetv2_{v}": BackboneSpec(f"EfficientNetV2{v.upper()}", "v2", size,
                                           f"tf_efficientnetv2_{v}")
       for v, size in (("s", 384), ("m", 480), ("l", 480))},
}


def _set_drop_connect_rate(config: dict, rate: float) -> dict:
    """Rescale the per-block stochastic-depth rates (``rate * b / blocks`` in Keras)."""
    default = KERAS_DROP_CONNECT_RATE
    for layer in config["layers"]:
        if layer["class_name"] == "Dropout" and layer["name"].endswith("_drop"):
            layer["config"]["rate"] = layer["config"]["rate"] * rate / default
    return config


def backbone_config(spec: BackboneSpec, input_shape: tuple[int, int, int], stem_strides=(2, 2),
                    drop_connect_rate: float = 0.2) -> dict:
    """The edited functional config of the backbone ``spec`` for ``input_shape`` (H, W, C)."""
    config = applications.edited_config(spec.constructor, tuple(input_shape),
                                        **spec.application_kwargs)
    config = set_stem_strides(config, stem_strides, tuple(input_shape[:2]), conv=STEM_CONV,
                              pad=spec.stem_pad)
    return _set_drop_connect_rate(config, drop_connect_rate)


def build_efficientnet_backbone(spec: BackboneSpec, input_shape: tuple[int, int, int],
                                stem_strides=(2, 2), drop_connect_rate: float = 0.2,
                                weights: str | None = None) -> keras.Model:
    """Feature extractor ``(B, H, W, C) → (B, H', W', F)`` named ``backbone`` (``spec``: one of
    :data:`EFFICIENTNET_SPECS`, as ``create_model`` finds it by name).

    weights: None, "imagenet" (downloaded by Keras) or a weights file of the 3-channel
    ``keras.applications`` backbone with ``include_top=False``.
    """
    applications.check_weights(weights, spec.constructor)
    return applications.build_from_config(
        backbone_config(spec, input_shape, stem_strides, drop_connect_rate), spec.constructor,
        stem_conv=STEM_CONV, weights=weights, **spec.application_kwargs)

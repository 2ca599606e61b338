"""EfficientNet V1 / V2 feature extractors built from ``keras.applications``.

The application's functional config is edited — input shape and channels, stem strides,
preprocessing layers removed (the pipeline normalises), drop-connect rate — and rebuilt with
``keras.Model.from_config``. Layer names and weight shapes (except an adapted stem kernel) are
those of the application, so pretrained weights load into every variant: they are loaded into
the plain 3-channel application the Keras way, then copied across by layer name.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import keras

from .. import graph_edit
from ..stems import adapt_input_conv, set_stem_strides

STEM_CONV = "stem_conv"
PREPROCESSING_LAYERS = {"Rescaling", "Normalization"}
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


def _application(spec: BackboneSpec, weights):
    """The plain 3-channel, variable-size, headless Keras application."""
    kwargs = dict(include_top=False, weights=weights, input_shape=(None, None, 3))
    if spec.family == "v2":
        kwargs["include_preprocessing"] = False
    return getattr(keras.applications, spec.constructor)(**kwargs)


@functools.lru_cache(maxsize=None)
def _application_config(spec: BackboneSpec) -> dict:
    """The application's functional config (independent of input size; cached: ~1 s a build)."""
    model = _application(spec, weights=None)
    config = model.get_config()
    del model
    return config


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
    config = graph_edit.remove_layers(_application_config(spec), PREPROCESSING_LAYERS)
    config = graph_edit.set_input_shape(config, tuple(input_shape))
    config = graph_edit.use_global_dtype_policy(config)
    config = graph_edit.drop_build_configs(config)
    config = set_stem_strides(config, stem_strides, tuple(input_shape[:2]), conv=STEM_CONV,
                              pad=spec.stem_pad)
    config = _set_drop_connect_rate(config, drop_connect_rate)
    config["name"] = "backbone"
    return config


def transfer_weights(source: keras.Model, target: keras.Model, stem_conv: str = STEM_CONV):
    """Copy weights by layer name from a 3-channel ``source`` into ``target``, adapting the stem
    kernel to ``target``'s input channels."""
    for layer in target.layers:
        if not layer.weights:
            continue
        values = source.get_layer(layer.name).get_weights()
        if layer.name == stem_conv:
            values = [adapt_input_conv(values[0], layer.kernel.shape[2]), *values[1:]]
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            raise ValueError(f"layer {layer.name!r}: weight shapes {got} do not fit {expected}")
        layer.set_weights(values)


def build_efficientnet_backbone(spec: BackboneSpec, input_shape: tuple[int, int, int],
                                stem_strides=(2, 2), drop_connect_rate: float = 0.2,
                                weights: str | None = None) -> keras.Model:
    """Feature extractor ``(B, H, W, C) → (B, H', W', F)`` named ``backbone`` (``spec``: one of
    :data:`EFFICIENTNET_SPECS`, as ``create_model`` finds it by name).

    weights: None, "imagenet" (downloaded by Keras) or a weights file of the 3-channel
    ``keras.applications`` backbone with ``include_top=False``.
    """
    if weights not in (None, "imagenet") and "://" not in weights and not os.path.isfile(weights):
        raise ValueError(f"weights: no file {weights!r}; expected None, 'imagenet' or a weights "
                         f"file of keras.applications.{spec.constructor}(include_top=False)")
    backbone = keras.Model.from_config(
        backbone_config(spec, input_shape, stem_strides, drop_connect_rate))
    if weights is not None:
        source = _application(spec, weights=weights)
        transfer_weights(source, backbone)
        del source
    return backbone

"""What every backbone built from a ``keras.applications`` model shares (EfficientNets, ResNets).

A family edits the application's functional config — input shape and channels, global dtype
policy, preprocessing layers removed (the pipeline normalises), then its own stem and block
edits — and rebuilds it with ``keras.Model.from_config``. Layer names and weight shapes (except
an adapted stem kernel) stay those of the application, so pretrained weights load into every
variant: they are loaded into the plain 3-channel application the Keras way (``"imagenet"`` or
a file), then copied across by layer name (:func:`transfer_weights`).
"""

from __future__ import annotations

import copy
import functools
import os

import keras

from . import graph_edit
from .stems import adapt_input_conv

# Layers that normalise inside some applications (EfficientNet V1 / V2); the pipeline does it.
PREPROCESSING_LAYERS = {"Rescaling", "Normalization"}


def check_weights(weights: str | None, constructor: str) -> None:
    """``weights`` must be None, ``"imagenet"``, a URL or an existing file (checked before any
    model is built, so a typo fails fast and names what is expected)."""
    if weights not in (None, "imagenet") and "://" not in weights and not os.path.isfile(weights):
        raise ValueError(f"weights: no file {weights!r}; expected None, 'imagenet' or a weights "
                         f"file of keras.applications.{constructor}(include_top=False)")


def application(constructor: str, weights: str | None = None, **kwargs) -> keras.Model:
    """The plain 3-channel, variable-size, headless ``keras.applications.<constructor>``
    (``kwargs``: further constructor arguments, e.g. ``include_preprocessing=False``)."""
    return getattr(keras.applications, constructor)(
        include_top=False, weights=weights, input_shape=(None, None, 3), **kwargs)


@functools.lru_cache(maxsize=None)
def _cached_config(constructor: str, kwargs: tuple) -> dict:
    model = application(constructor, weights=None, **dict(kwargs))
    config = model.get_config()
    del model
    return config


def application_config(constructor: str, **kwargs) -> dict:
    """A copy of the application's functional config (independent of input size; the
    application is built once per process: ~1 s a build). Callers may edit the copy."""
    return copy.deepcopy(_cached_config(constructor, tuple(sorted(kwargs.items()))))


def edited_config(constructor: str, input_shape: tuple[int, int, int], **kwargs) -> dict:
    """The application's config for ``input_shape`` (H, W, C), following the global dtype
    policy, without preprocessing layers or recorded build shapes, named ``backbone``; the
    family then edits its stem (``stems.set_stem_strides``) and blocks."""
    config = graph_edit.remove_layers(application_config(constructor, **kwargs),
                                      PREPROCESSING_LAYERS)
    config = graph_edit.set_input_shape(config, tuple(input_shape))
    config = graph_edit.use_global_dtype_policy(config)
    config = graph_edit.drop_build_configs(config)
    config["name"] = "backbone"
    return config


def transfer_weights(source: keras.Model, target: keras.Model, stem_conv: str):
    """Copy weights by layer name from ``source`` into ``target``, adapting a 3-channel stem
    kernel to ``target``'s input channels (a stem of ``target``'s channel count is copied)."""
    for layer in target.layers:
        if not layer.weights:
            continue
        values = source.get_layer(layer.name).get_weights()
        if layer.name == stem_conv and values[0].shape[2] != layer.kernel.shape[2]:
            values = [adapt_input_conv(values[0], layer.kernel.shape[2]), *values[1:]]
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            raise ValueError(f"layer {layer.name!r}: weight shapes {got} do not fit {expected}")
        layer.set_weights(values)


def build_from_config(config: dict, constructor: str, stem_conv: str, weights: str | None = None,
                      **kwargs) -> keras.Model:
    """Rebuild the edited ``config`` and, unless ``weights`` is None, fill it with the weights
    of ``keras.applications.<constructor>`` (``"imagenet"`` or a file of the 3-channel
    application with ``include_top=False``, checked first by the family with
    :func:`check_weights`; ``kwargs`` as for :func:`application`)."""
    backbone = keras.Model.from_config(config)
    if weights is not None:
        source = application(constructor, weights=weights, **kwargs)
        transfer_weights(source, backbone, stem_conv=stem_conv)
        del source
    return backbone

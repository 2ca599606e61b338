"""``create_model(name, input_shape, **options)``: a named backbone with the configured stem,
pooling and head, returning float32 logits ``(B, 1)`` or ``(B, 2)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import keras

from .attention import TripletAttention
from .config import ModelConfig
from .efficientnet import EFFICIENTNET_SPECS, build_efficientnet_backbone
from .heads import classifier_head
from .nfnet import NF_SPECS, build_nf_backbone
from .plain_cnn import PLAIN_CNN_SPECS, build_plain_cnn_backbone
from .resizer import check_size, learned_resizer
from .resnet import RESNET_SPECS, build_resnet_backbone
from .stems import pre_stem_stack


@dataclasses.dataclass(frozen=True)
class RegisteredModel:
    """How ``create_model`` builds a name: its family's backbone builder, called with the spec."""

    # (spec, input_shape, stem_strides=, drop_connect_rate=, weights=) -> the backbone model
    build_backbone: Callable[..., keras.Model]
    spec: Any


# name → its builder and spec, looked up once. One registry for every family; add a family here.
MODEL_REGISTRY: dict[str, RegisteredModel] = {
    **{name: RegisteredModel(build_efficientnet_backbone, spec)
       for name, spec in EFFICIENTNET_SPECS.items()},
    **{name: RegisteredModel(build_plain_cnn_backbone, spec)
       for name, spec in PLAIN_CNN_SPECS.items()},
    **{name: RegisteredModel(build_resnet_backbone, spec) for name, spec in RESNET_SPECS.items()},
    **{name: RegisteredModel(build_nf_backbone, spec) for name, spec in NF_SPECS.items()},
}


def list_models() -> list[str]:
    return sorted(MODEL_REGISTRY)


def _check_input_shape(input_shape) -> tuple[int, int, int]:
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if (shape is None or len(shape) != 3
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape)):
        raise ValueError(f"input_shape: expected (height, width, channels) positive ints, got "
                         f"{input_shape!r}")
    return shape


def resolve_config(config: ModelConfig | None = None, **options) -> ModelConfig:
    """``config`` (default: the defaults) with keyword ``options`` replacing its fields; the
    merged result is validated as a whole."""
    ModelConfig.check_option_names(options)
    return dataclasses.replace(config or ModelConfig(), **options)


def create_model(name: str, input_shape, config: ModelConfig | None = None, *,
                 resizer_size=None, **options) -> keras.Model:
    """Build classifier ``name`` (see :func:`list_models`) for ``(H, W, C)`` inputs.

    Options are the fields of :class:`ModelConfig`, given as ``config=`` and/or keywords
    (keywords override). ``resizer_size = (h, w)`` puts a learned resizer
    (``tfseti.models.resizer``; ``resizer_filters`` / ``resizer_blocks`` wide and deep) first,
    so the ``(H, W, C)`` input reaches the backbone as ``(h, w, C)``. It is an argument, not an
    option: the size belongs to the view (``view.resize``), which the trainer passes on.
    Builds under the global dtype policy; logits are float32.
    Layers: ``image`` → ``resizer`` → ``pre_stem*`` → ``backbone`` (nested model; freeze it for
    a head warm-up; the resizer and pre-stem, new like the head, keep training) →
    ``triplet_attention`` → ``pool`` → ``logits``.
    """
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid models: {list_models()}")
    registered = MODEL_REGISTRY[name]
    config = resolve_config(config, **options)
    shape = _check_input_shape(input_shape)

    image = keras.Input(shape, name="image")
    x = image
    if resizer_size is not None:
        x = learned_resizer(x, check_size(resizer_size, "resizer_size"),
                            filters=config.resizer_filters, blocks=config.resizer_blocks)
    x = pre_stem_stack(x, config.pre_stem_channels)
    backbone = registered.build_backbone(registered.spec, (*x.shape[1:3], int(x.shape[-1])),
                              stem_strides=config.stem_strides,
                              drop_connect_rate=config.drop_connect_rate,
                              weights=config.weights)
    features = backbone(x)
    if config.triplet_attention:
        features = TripletAttention(name="triplet_attention")(features)
    logits = classifier_head(features, config)
    return keras.Model(image, logits, name=name)


def load_network(path: str) -> keras.Model:
    """A network saved as ``.keras`` (``model.keras`` of a fold), loaded in safe mode: no code
    from the file runs, only the project's registered layers (this module imports them all)."""
    return keras.saving.load_model(path, compile=False, safe_mode=True)

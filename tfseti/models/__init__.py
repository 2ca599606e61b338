"""Classifiers: EfficientNet V1/V2 and ResNet50/101 backbones (keras.applications),
normalisation-free networks (NF-ResNet, NF-RegNet, ECA-NFNet, as timm defines them; weights
converted from timm checkpoints by ``python -m tfseti.models.convert_timm``), a plain CNN, stems,
GeM and attention poolings, heads.

``create_model`` and the layers import Keras; ``ModelConfig`` does not. Names load lazily so
that importing the package (e.g. for the config dataclass) stays cheap.
"""

from .config import ModelConfig

_LAZY = {
    "create_model": "factory", "list_models": "factory", "MODEL_REGISTRY": "factory",
    "load_network": "factory",
    "GeMPooling2D": "pooling", "gem_pool": "pooling", "SpatialAttentionPooling2D": "pooling",
    "TripletAttention": "attention",
    "MultiSampleDropoutDense": "heads", "FramewiseAttentionPooling": "heads",
    "adapt_input_conv": "stems", "LearnedResizer": "resizer",
}

__all__ = ["ModelConfig", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

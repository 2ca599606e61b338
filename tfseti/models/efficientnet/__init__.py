"""EfficientNet V1 / V2 backbones from ``keras.applications``, with edited stems."""

from .backbone import EFFICIENTNET_SPECS, BackboneSpec, build_efficientnet_backbone

__all__ = ["EFFICIENTNET_SPECS", "BackboneSpec", "build_efficientnet_backbone"]

"""ResNet50 / ResNet101 backbones from ``keras.applications``, with edited stems."""

from .backbone import RESNET_SPECS, ResNetSpec, build_resnet_backbone

__all__ = ["RESNET_SPECS", "ResNetSpec", "build_resnet_backbone"]

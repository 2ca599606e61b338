"""Normalisation-free networks (NF-ResNet, NF-RegNet, ECA-NFNet) in Keras 3, as timm defines them."""

from .backbone import build_nf_backbone
from .specs import NF_SPECS, NFSpec

__all__ = ["NF_SPECS", "NFSpec", "build_nf_backbone"]

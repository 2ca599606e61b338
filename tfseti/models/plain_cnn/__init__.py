"""Plain CNNs: stacks of 3x3 Conv-BN-swish stages, full resolution at the input (small, fast on a CPU)."""

from .backbone import PLAIN_CNN_SPECS, PlainCNNSpec, build_plain_cnn_backbone

__all__ = ["PLAIN_CNN_SPECS", "PlainCNNSpec", "build_plain_cnn_backbone"]

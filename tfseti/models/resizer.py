"""The learned resizer (Talebi & Milanfar, "Learning to Resize Images for Computer Vision Tasks",
ICCV 2021), as a trainable first stage of the network (``view.resize_method = "learned"``).

A fixed resize of an 819 x 256 cadence image to, say, 256 x 256 interpolates a one-pixel drifting
line away into a faint smear; the learned resizer lets the classifier's loss decide what survives
the reduction. Its output is the plain bilinear resize of the input (the *skip* path) plus a
learned correction, so it starts close to the fixed resize and can only add to it::

    skip = bilinear(x)                                          # (B, h, w, C)
    y    = BN(lrelu(conv1x1(lrelu(conv7x7(x)))))                # full resolution, ``filters`` wide
    r    = bilinear(y)                                          # the bottleneck, (B, h, w, filters)
    z    = r;  z = z + BN(conv3x3(lrelu(BN(conv3x3(z)))))       # ``blocks`` residual blocks
    out  = skip + conv3x3_C(r + BN(conv3x3(z)))                 # back to the C input channels

as the keras-io example ``examples/vision/learnable_resizer.py`` (LeakyReLU slope 0.2, the 3x3
convs of the blocks and of the projection without bias), with two deliberate differences: the
residual blocks are chained (the example feeds every block the bottleneck, so only the last one
counted) and the output conv is 3x3 as in the paper's figure (the example's is 7x7).

Both resizes are ``tfseti.data.views.resize_images`` (bilinear, no antialiasing): two matrix
products, XLA-compilable, with exactly ``tf.image.resize``'s coefficients; with every conv weight
zero the layer *is* the view's bilinear resize. Built under the global dtype policy (bf16 /
float16 compute, float32 variables), like every layer of ``tfseti.models``.
"""

from __future__ import annotations

import keras
from keras import ops

from tfseti.data.views import resize_images

LEAKY_SLOPE = 0.2
METHOD = "bilinear"


def leaky_relu(x):
    """LeakyReLU(0.2) as ``max(x, 0.2 x)`` (the same function for a slope in (0, 1)): TF's own
    ``LeakyRelu`` after a biased conv makes grappler's remapper fail on the training graph
    ("remapper failed: ... LeakyReluGrad exist for missing node BiasAdd"), which then skips that
    whole optimisation pass for the step outside XLA."""
    return ops.maximum(x, LEAKY_SLOPE * x)


def check_size(size, what: str = "LearnedResizer.size") -> tuple[int, int]:
    """``size`` as a ``(height, width)`` tuple of positive ints, else a ValueError naming ``what``."""
    value = tuple(size) if isinstance(size, (list, tuple)) else None
    if (value is None or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise ValueError(f"{what}: expected (height, width) of positive ints, got {size!r}")
    return value


@keras.saving.register_keras_serializable(package="tfseti")
class LearnedResizer(keras.layers.Layer):
    """``(B, H, W, C)`` → ``(B, *size, C)``: bilinear resize plus a learned correction.

    size: the output ``(height, width)``; filters: width of the conv path; blocks: residual
    blocks at the output size (0: none). ``C`` is taken from the input when built.
    """

    def __init__(self, size, filters: int = 16, blocks: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.size = check_size(size)
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            raise ValueError(f"LearnedResizer.filters: expected an int >= 1, got {filters!r}")
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0:
            raise ValueError(f"LearnedResizer.blocks: expected an int >= 0, got {blocks!r}")
        self.filters, self.blocks = filters, blocks

        def conv(name, filters, kernel, bias):
            return keras.layers.Conv2D(filters, kernel, padding="same", use_bias=bias,
                                       dtype=self.dtype_policy, name=name)

        def norm(name):
            return keras.layers.BatchNormalization(dtype=self.dtype_policy, name=name)

        # Plain attributes (not lists or dicts) so Keras tracks and saves every sublayer's weights.
        self.in_conv = conv("in_conv", filters, 7, True)
        self.mix_conv = conv("mix_conv", filters, 1, True)
        self.mix_bn = norm("mix_bn")
        for i in range(blocks):
            setattr(self, f"block{i}_conv1", conv(f"block{i}_conv1", filters, 3, False))
            setattr(self, f"block{i}_bn1", norm(f"block{i}_bn1"))
            setattr(self, f"block{i}_conv2", conv(f"block{i}_conv2", filters, 3, False))
            setattr(self, f"block{i}_bn2", norm(f"block{i}_bn2"))
        self.proj_conv = conv("proj_conv", filters, 3, False)
        self.proj_bn = norm("proj_bn")
        self.out_conv = None   # C output filters: known once built

    def build(self, input_shape):
        if len(input_shape) != 4 or any(d is None for d in input_shape[1:]):
            raise ValueError(f"{self.name}: expected images (B, H, W, C) of static H, W, C, got "
                             f"shape {tuple(input_shape)}")
        channels = int(input_shape[-1])
        batch = input_shape[0]
        full = (batch, *input_shape[1:3], self.filters)
        small = (batch, *self.size, self.filters)
        self.in_conv.build(tuple(input_shape))
        self.mix_conv.build(full)
        self.mix_bn.build(full)
        for i in range(self.blocks):
            for part in ("conv1", "bn1", "conv2", "bn2"):
                getattr(self, f"block{i}_{part}").build(small)
        self.proj_conv.build(small)
        self.proj_bn.build(small)
        self.out_conv = keras.layers.Conv2D(channels, 3, padding="same", dtype=self.dtype_policy,
                                            name="out_conv")
        self.out_conv.build(small)

    def call(self, images, training=None):
        skip = resize_images(images, self.size, METHOD)
        x = leaky_relu(self.in_conv(images))
        x = leaky_relu(self.mix_conv(x))
        x = self.mix_bn(x, training=training)
        bottleneck = resize_images(x, self.size, METHOD)
        x = bottleneck
        for i in range(self.blocks):
            block = lambda part: getattr(self, f"block{i}_{part}")   # noqa: E731
            y = leaky_relu(block("bn1")(block("conv1")(x), training=training))
            x = x + block("bn2")(block("conv2")(y), training=training)
        x = bottleneck + self.proj_bn(self.proj_conv(x), training=training)
        return skip + self.out_conv(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(size=list(self.size), filters=self.filters, blocks=self.blocks)
        return config


def learned_resizer(images, size, filters: int = 16, blocks: int = 1):
    """Apply a :class:`LearnedResizer` named ``resizer`` to the symbolic ``images``."""
    return LearnedResizer(size, filters=filters, blocks=blocks, name="resizer")(images)

"""The layers a normalisation-free network needs beyond Keras' own: the scaled weight-standardised
convolution, a max pool padded as PyTorch pads it, and a constant scale.

Why PyTorch's padding: the published weights are timm checkpoints, trained with symmetric
padding ``((stride - 1) + dilation * (kernel - 1)) // 2`` on both sides. Keras' ``"same"`` pads a
stride-2 layer of an even input only after (0, 1), which shifts every strided layer by a pixel:
converted weights would then compute something else. These layers pad explicitly and convolve
``"valid"``, so a converted model gives timm's features (``benchmarks/timm_parity.py``).
"""

from __future__ import annotations

import math

import keras
from keras import ops

# DeepMind's constants (``nfnets/base.py``; timm ``_nonlin_gamma``): 1 / std of act(N(0, 1)), the
# factor that restores unit variance after the activation. timm folds it into the next conv's
# scale (``gamma_in_act = False``), as these layers do.
NONLINEARITY_GAMMA = {
    "identity": 1.0,
    "relu": 1.7139588594436646,
    "silu": 1.7881293296813965,
    "gelu": 1.7015043497085571,
}


def torch_padding(kernel: int, stride: int, dilation: int = 1) -> int:
    """timm's ``get_padding``: the symmetric padding of one axis."""
    return ((stride - 1) + dilation * (kernel - 1)) // 2


def accelerator_present() -> bool:
    """Whether TensorFlow sees a GPU or TPU (where grouped convolutions are native)."""
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"{name}: expected an int >= 1 or two of them, got {value!r}")
    return pair


@keras.saving.register_keras_serializable(package="tfseti")
class ScaledStdConv2D(keras.layers.Layer):
    """Convolution with a scaled weight-standardised kernel (Brock et al. 2021; timm
    ``ScaledStdConv2d``).

    Each output unit's kernel is standardised over (kh, kw, in) — mean 0, variance 1 with
    ``eps`` added to the (biased) variance — then multiplied by a learned per-unit ``gain`` and by
    ``gamma / sqrt(fan_in)``, ``gamma`` being the preceding activation's constant (so the output
    keeps unit variance). Variables: ``kernel`` (kh, kw, in / groups, filters), ``bias`` and
    ``gain`` (filters,); all three are plain tracked variables, so ``.keras`` and ``.weights.h5``
    save and load them (a ``Conv2D`` subclass would save only kernel and bias).

    The kernel is standardised in float32 whatever the (mixed) dtype policy (``autocast=False``: the
    variables are never cast before it), then cast to the compute dtype for the convolution.
    """

    def __init__(self, filters: int, kernel_size=3, strides=1, groups: int = 1,
                 dilation_rate: int = 1, gamma: float = 1.0, eps: float = 1e-5,
                 gain_init: float = 1.0, use_bias: bool = True, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.filters, self.groups = int(filters), int(groups)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self.gamma, self.eps, self.gain_init = float(gamma), float(eps), float(gain_init)
        self.use_bias = bool(use_bias)
        if self.filters % self.groups:
            raise ValueError(f"{self.name}: filters {self.filters} not divisible by groups "
                             f"{self.groups}")
        self.padding = tuple(torch_padding(k, s, d) for k, s, d in
                             zip(self.kernel_size, self.strides, self.dilation_rate))

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if channels % self.groups:
            raise ValueError(f"{self.name}: {channels} input channels not divisible by groups "
                             f"{self.groups}")
        fan_in = channels // self.groups * math.prod(self.kernel_size)
        self.scale = self.gamma / math.sqrt(fan_in)
        # timm initialises with kaiming normal (fan_in, linear): std 1/sqrt(fan_in). The
        # standardisation removes the scale anyway; this keeps the raw kernel well conditioned.
        self.kernel = self.add_weight(
            name="kernel", shape=(*self.kernel_size, channels // self.groups, self.filters),
            initializer=keras.initializers.VarianceScaling(1.0, "fan_in", "untruncated_normal"))
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
                     if self.use_bias else None)
        self.gain = self.add_weight(name="gain", shape=(self.filters,),
                                    initializer=keras.initializers.Constant(self.gain_init))

    def standardized_kernel(self):
        """The kernel the convolution uses, float32 (float64 under a float64 policy)."""
        dtype = "float64" if self.variable_dtype == "float64" else "float32"
        kernel = ops.cast(self.kernel, dtype)
        mean = ops.mean(kernel, axis=(0, 1, 2), keepdims=True)
        var = ops.var(kernel, axis=(0, 1, 2), keepdims=True)
        return (kernel - mean) * ops.rsqrt(var + self.eps) * (
            ops.cast(self.gain, dtype) * self.scale)

    def call(self, x):
        # autocast=False also leaves the inputs alone: cast them as an autocast layer would
        x = ops.cast(x, self.compute_dtype)
        kernel = ops.cast(self.standardized_kernel(), self.compute_dtype)
        if any(self.padding):
            (ph, pw) = self.padding
            x = ops.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
        if self.groups > 1 and not accelerator_present():
            # A CPU has no fast grouped convolution: TensorFlow runs it through XLA, whose CPU
            # gradient of a grouped conv is ~30-130x slower than one plain conv per group
            # (measured: 715 ms vs 22 ms for 6 groups of 64, 3.2 s vs 24 ms for 93 groups of 8).
            # The same numbers either way; accelerators keep the single grouped op.
            y = ops.concatenate([
                ops.conv(xg, kg, strides=self.strides, padding="valid",
                         dilation_rate=self.dilation_rate)
                for xg, kg in zip(ops.split(x, self.groups, axis=-1),
                                  ops.split(kernel, self.groups, axis=-1))], axis=-1)
        else:
            y = ops.conv(x, kernel, strides=self.strides, padding="valid",
                         dilation_rate=self.dilation_rate)
        if self.bias is not None:
            y = y + ops.cast(self.bias, self.compute_dtype)
        return y

    def compute_output_shape(self, input_shape):
        def size(n, k, s, d, p):
            return None if n is None else (n + 2 * p - d * (k - 1) - 1) // s + 1
        h, w = (size(n, k, s, d, p) for n, k, s, d, p in zip(
            input_shape[1:3], self.kernel_size, self.strides, self.dilation_rate, self.padding))
        return (input_shape[0], h, w, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      groups=self.groups, dilation_rate=self.dilation_rate, gamma=self.gamma,
                      eps=self.eps, gain_init=self.gain_init, use_bias=self.use_bias)
        return config


@keras.saving.register_keras_serializable(package="tfseti")
class TorchMaxPool2D(keras.layers.Layer):
    """Max pooling padded symmetrically by ``padding`` with -inf on each side, as PyTorch's
    ``MaxPool2d(pool_size, strides, padding)`` (NF-ResNet's stem pool: 3, 2, 1)."""

    def __init__(self, pool_size: int = 3, strides: int = 2, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.strides, self.padding = int(pool_size), int(strides), int(padding)

    def call(self, x):
        p = self.padding
        if p:
            x = ops.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=float("-inf"))
        return ops.max_pool(x, self.pool_size, self.strides, padding="valid")

    def compute_output_shape(self, input_shape):
        def size(n):
            return None if n is None else (n + 2 * self.padding - self.pool_size) // self.strides + 1
        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size, strides=self.strides, padding=self.padding)
        return config


@keras.saving.register_keras_serializable(package="tfseti")
class Scale(keras.layers.Layer):
    """Multiply by a constant: the β before a block, the α of its residual branch, the attention
    gain (fixed numbers of the architecture, not learned)."""

    def __init__(self, value: float, **kwargs):
        super().__init__(**kwargs)
        self.value = float(value)

    def call(self, x):
        # convert_to_tensor, not cast: a cast would first round the number to float32
        return x * ops.convert_to_tensor(self.value, dtype=x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(value=self.value)
        return config

"""Adaptive gradient clipping (AGC; Brock et al. 2021, "High-Performance Large-Scale Image
Recognition Without Normalization"), as timm's ``adaptive_clip_grad`` and its training script.

Each unit's gradient is clipped relative to the norm of that unit's weights:

    max_norm = max(‖W_u‖, eps) · clip
    g_u ← g_u · max_norm / max(‖g_u‖, 1e-6)   where ‖g_u‖ > max_norm

Units in Keras layouts (output units last): a conv kernel ``(kh, kw, in, out)`` → one norm per
output filter over ``(kh, kw, in)`` (all axes but the last); a dense kernel ``(in, out)`` → per
output over axis 0; a vector (bias, BN gamma / beta, an NF conv's per-filter gain) or a scalar
(GeM's p) → per element, ``|x|``. (timm keeps an NF conv's gain as ``(out, 1, 1, 1)``, so a
gain is clipped per filter there too; timm treats a 1-D bias as one unit, here each element is
its own.) A Keras ``DepthwiseConv2D`` kernel ``(kh, kw, C, multiplier)`` gets one norm per
multiplier over all channels, coarser than timm's per-channel units (the NFNets and ResNets this
is meant for have no depthwise convolutions).

As in timm's training script, the classifier is not clipped: variables of the layer named
``logits`` (``tfseti.models.heads.LOGITS_LAYER``) keep their gradients.

Where: :class:`AdaptiveClipping` wraps the optimizer's ``update_step(gradient, variable, lr)``.
Keras calls it once per variable after the loss-scale division, after the gradients' all-reduce
under ``tf.distribute`` (``TFOptimizer._backend_update_step`` reduces, then runs
``update_step`` on each replica's copy of the variable with the summed gradient) and, with
gradient accumulation, on the averaged gradients — the gradient timm clips. (Keras' own
``clipnorm`` runs earlier, on each replica's partial gradient.) It is plain tensor arithmetic, so
it compiles with ``jit_compile=True``, and it adds no optimizer variable: the checkpoint of an
AGC optimizer has the plain optimizer's layout. Decoupled weight decay is applied by Keras just
before ``update_step``, so ``W`` is the decayed weight (a relative difference of ``lr · wd``).
"""

from __future__ import annotations

import keras
from keras import ops
from keras.src.utils.naming import auto_name

from tfseti.models.heads import LOGITS_LAYER

GRAD_NORM_FLOOR = 1e-6   # timm's clamp of the gradient's norm in the division


def unitwise_norm(x):
    """L2 norm of each unit of ``x`` (float32), broadcastable against ``x``: over all axes but
    the last for a kernel (rank >= 2), ``|x|`` for a vector or scalar."""
    x = ops.cast(x, "float32")
    rank = len(x.shape)
    if rank <= 1:
        return ops.abs(x)
    return ops.sqrt(ops.sum(ops.square(x), axis=tuple(range(rank - 1)), keepdims=True))


def adaptive_clip(gradient, param, clip: float, eps: float = 1e-3):
    """``gradient`` with each unit whose norm exceeds ``max(‖param_u‖, eps) · clip`` scaled down
    to that norm (the others unchanged); the gradient's dtype."""
    grad = ops.cast(gradient, "float32")
    max_norm = ops.maximum(unitwise_norm(param), eps) * clip
    grad_norm = unitwise_norm(grad)
    clipped = grad * (max_norm / ops.maximum(grad_norm, GRAD_NORM_FLOOR))
    return ops.cast(ops.where(grad_norm > max_norm, clipped, grad), gradient.dtype)


class AdaptiveClipping:
    """Mixin for a Keras optimizer: AGC on every gradient before the optimizer's update.

    agc_clip: the clipping factor λ (> 0; timm's NFNet default 0.01).
    agc_eps: the floor of a unit's weight norm (> 0; timm's 1e-3), so that zero-initialised
        weights can still move.
    agc_exclude: names of layers whose variables are not clipped (a variable is excluded when
        one of the names is a component of its path, e.g. ``logits/kernel``,
        ``logits/dense/kernel``).

    Unnamed, it takes the name the plain optimizer would get (``adam_w``, ``sgd``, ...), so its
    variables are named as the plain optimizer's.
    """

    def __init__(self, *args, agc_clip: float = 0.01, agc_eps: float = 1e-3,
                 agc_exclude=(LOGITS_LAYER,), name: str | None = None, **kwargs):
        if name is None:
            plain = next(c for c in type(self).__mro__
                         if issubclass(c, keras.optimizers.Optimizer)
                         and not issubclass(c, AdaptiveClipping))
            name = auto_name(plain.__name__)
        super().__init__(*args, name=name, **kwargs)
        for name, value in (("agc_clip", agc_clip), ("agc_eps", agc_eps)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if isinstance(agc_exclude, str):
            agc_exclude = (agc_exclude,)
        self.agc_clip = float(agc_clip)
        self.agc_eps = float(agc_eps)
        self.agc_exclude = tuple(str(name) for name in agc_exclude)

    def agc_applies(self, variable) -> bool:
        """Whether the gradient of (Keras) ``variable`` is clipped: not in an excluded layer."""
        layers = variable.path.split("/")[:-1]
        return not any(name in layers for name in self.agc_exclude)

    def update_step(self, gradient, variable, learning_rate):
        # `variable` may be the backend's variable (under tf.distribute: one replica's copy);
        # the optimizer's own list holds the Keras variable, whose path names its layer.
        tracked = self._trainable_variables[self._get_variable_index(variable)]
        if self.agc_applies(tracked):
            gradient = adaptive_clip(gradient, variable, self.agc_clip, self.agc_eps)
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(agc_clip=self.agc_clip, agc_eps=self.agc_eps,
                      agc_exclude=list(self.agc_exclude))
        return config


@keras.saving.register_keras_serializable(package="tfseti")
class AGCAdamW(AdaptiveClipping, keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` with adaptive gradient clipping (:class:`AdaptiveClipping`)."""


@keras.saving.register_keras_serializable(package="tfseti")
class AGCAdam(AdaptiveClipping, keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with adaptive gradient clipping (:class:`AdaptiveClipping`)."""


@keras.saving.register_keras_serializable(package="tfseti")
class AGCSGD(AdaptiveClipping, keras.optimizers.SGD):
    """``keras.optimizers.SGD`` with adaptive gradient clipping (:class:`AdaptiveClipping`)."""


# The plain optimizer → its AGC subclass (make_optimizer picks by TrainConfig.optimizer).
AGC_OPTIMIZERS = {keras.optimizers.AdamW: AGCAdamW, keras.optimizers.Adam: AGCAdam,
                  keras.optimizers.SGD: AGCSGD}

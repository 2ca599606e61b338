"""Background removal inside the pipeline: the OFF panels' per-channel median subtracted from every panel.

Whatever is in the OFF panels (B, C, D) at a frequency is background at that frequency: the
bandpass, steady narrow-band RFI, anything that does not come from the target. Its median over the
819 OFF rows of a channel is a robust estimate (a short burst in one OFF panel does not move it),
and subtracting it from all six panels leaves the ON panels with what is there *only* while the
telescope points at the target. A needle lives only in ON panels, so it is not in the estimate and
survives; a zero-drift interferer present in all panels is removed.

``ViewConfig(background="off_median")`` applies it before the view (and before per-column
normalisation when both are on). Static shapes; the median is a sort over a static axis, so it
compiles with XLA (``jit_compile=True``) and runs in ``tf.data`` maps alike.
"""

from __future__ import annotations

import tensorflow as tf

from tfseti.data.config import VIEW_BACKGROUNDS
from tfseti.io.kaggle import OFF_PANELS



def _check_six_panels(cadence: tf.Tensor) -> None:
    if cadence.shape.rank != 4:
        raise ValueError(f"cadence batch: expected rank 4 (batch, panels, time, freq), got shape "
                         f"{cadence.shape}")
    if cadence.shape[1] != 6:
        raise ValueError(f"background 'off_median' needs the OFF panels (B, C, D), but these cadences "
                         f"hold {cadence.shape[1]} panels (ON-only shards, converted with --panels on, "
                         f"hold 3); use background 'none' or convert with --panels all")


def median(x: tf.Tensor, axis: int) -> tf.Tensor:
    """Median along a static ``axis``, kept as a size-1 axis (the mean of the two middle values
    when the axis is even), taken by sorting: XLA-compilable, unlike ``tfp``'s percentile."""
    n = x.shape[axis]
    ordered = tf.sort(x, axis=axis)
    low = tf.gather(ordered, (n - 1) // 2, axis=axis)     # same index as high when n is odd
    high = tf.gather(ordered, n // 2, axis=axis)
    return tf.expand_dims(0.5 * (low + high), axis)


def off_median(cadence: tf.Tensor) -> tf.Tensor:
    """Per-channel median of the OFF panels' rows: ``(B, 6, T, F)`` -> ``(B, 1, 1, F)`` float32.

    The median of the ``3 T`` OFF values of each channel (the mean of the two middle ones when
    ``3 T`` is even), taken by sorting along a static axis.
    """
    cadence = tf.convert_to_tensor(cadence)
    _check_six_panels(cadence)
    _, _, time, freq = cadence.shape
    off = tf.gather(tf.cast(cadence, tf.float32), OFF_PANELS, axis=1)      # (B, 3, T, F)
    return median(tf.reshape(off, [-1, 3 * time, freq]), axis=1)[:, None]


def subtract_off_median(cadence: tf.Tensor) -> tf.Tensor:
    """``cadence - off_median(cadence)`` for every panel: ``(B, 6, T, F)`` -> float32, same shape."""
    cadence = tf.convert_to_tensor(cadence)
    return tf.cast(cadence, tf.float32) - off_median(cadence)


def remove_background(cadence: tf.Tensor, method: str) -> tf.Tensor:
    """Apply the configured background removal (``none`` returns float32 ``cadence``)."""
    if method == "none":
        return tf.cast(cadence, tf.float32)
    if method == "off_median":
        return subtract_off_median(cadence)
    raise ValueError(f"background: expected one of {VIEW_BACKGROUNDS}, got {method!r}")

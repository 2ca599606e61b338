"""Input views: how a batch of cadences ``(B, P, 273, 256)`` becomes the images a model sees.

One config key picks the view (the winning solutions' inputs):

=========  ==========================================  ==================
view       what                                        image (H, W, C)
=========  ==========================================  ==================
``on``     the three ON panels (A A A) stacked in time  819 x 256 x 1
``on_off`` channel 0 = ON panels (A A A) in time,       819 x 256 x 2
           channel 1 = OFF panels (B C D) in time
``all``    the six panels A B A C A D stacked in time   1638 x 256 x 1
=========  ==========================================  ==================

``dedoppler``: de-Doppler maps (``tfseti.data.drift_sums``), ``drifts x 256 x P``: power summed
along straight drift paths in each panel, drift rate x channel at the cadence's reference time,
one image channel per panel (P = 6, or 3 for ON-only shards). The view hands the network the maps the classical search scores (the same op, the
same options: ``ViewConfig.dedoppler``), aligned so that a needle drifting straight through the
cadence sits at one (drift, channel) pixel in every ON channel and a straight interferer in all
six; the network learns how to weigh ON against OFF and what curved, pulsed or broad needles look
like there. Its background removal is its own (``dedoppler.background``); ``background`` and
``normalize_columns`` below apply to the time-frequency views only.

Optionally the OFF panels' per-channel median is subtracted from every panel first
(``background="off_median"``, ``tfseti.data.off_median``), each panel is normalised per frequency
column (mean 0 and standard deviation 1 over the panel's time rows, i.e. the column centred and
scaled to L2 norm ``sqrt(T)``; this takes out the bandpass and steady narrow-band RFI) and the
image is resized to ``H x W`` — except for ``resize_method = "learned"``: then the view stays at
full resolution and the network's first stage (``tfseti.models.resizer``) learns the resize.

``extra_channels = ["nmf"]`` appends one more channel to a time-frequency view (before the resize):
the same panels minus their NMF background (``tfseti.data.nmf``: the OFF panels factorised into
``nmf_rank`` non-negative spectra, the ON panels fitted with them), stacked like the view's own
panels: the ON panels for ``on`` (channels ON, NMF) and ``on_off`` (ON, OFF, NMF), all six for
``all`` (ABACAD, NMF). It is computed after the background removal and column normalisation.

Everything is static-shaped and compiles with XLA (``jit_compile=True``): the resize is two matrix
products with interpolation matrices built once per (size, method) at trace time, because XLA has
no kernel for TF's bicubic or area resize. The matrices are exactly ``tf.image.resize`` applied to
an identity, so the result equals ``tf.image.resize`` (tested).
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from tfseti.data.config import ViewConfig
from tfseti.data.drift_sums import dedoppler
from tfseti.data.nmf import nmf_residual
from tfseti.data.off_median import remove_background
from tfseti.io.kaggle import OFF_PANELS, ON_PANELS

COLUMN_NORM_EPSILON = 1e-3


def _check_panels(name: str, panels: int, background: str = "none",
                  dedoppler_background: str = "panel_median") -> None:
    if panels not in (3, 6):
        raise ValueError(f"cadence batch: expected 6 panels (ABACAD) or 3 (ON only), got {panels}")
    if panels == 3 and background != "none":
        raise ValueError(f"background {background!r} needs the OFF panels, but these cadences hold "
                         f"only the 3 ON panels (shards converted with --panels on); use background "
                         f"'none' or convert with --panels all")
    if panels == 3 and name == "dedoppler" and dedoppler_background == "off_median":
        raise ValueError("view 'dedoppler' with view.dedoppler.background 'off_median' needs the OFF "
                         "panels, but these cadences hold only the 3 ON panels (shards converted "
                         "with --panels on); use 'panel_median' or convert with --panels all")
    if panels == 3 and name not in ("on", "dedoppler"):
        raise ValueError(f"view {name!r} needs the OFF panels, but these cadences hold only the 3 ON "
                         f"panels (shards converted with --panels on); use view 'on' or convert "
                         f"with --panels all")


def _check_extra_channels(cfg: ViewConfig, panels: int) -> None:
    if panels == 3 and "nmf" in cfg.extra_channels:
        raise ValueError("view.extra_channels 'nmf' needs the OFF panels (its background model is "
                         "fitted on them), but these cadences hold only the 3 ON panels (shards "
                         "converted with --panels on); drop 'nmf' or convert with --panels all")


def view_shape(cfg: ViewConfig, panels: int = 6, time: int = 273, freq: int = 256
               ) -> tuple[int, int, int]:
    """The static ``(H, W, C)`` of ``make_view`` for cadences of ``(panels, time, freq)``."""
    _check_panels(cfg.name, panels, cfg.background, cfg.dedoppler.background)
    _check_extra_channels(cfg, panels)
    if cfg.name == "dedoppler":
        height, channels = cfg.dedoppler.drifts, panels
    else:
        height, channels = {"on": (3 * time, 1), "on_off": (3 * time, 2), "all": (6 * time, 1)}[cfg.name]
        channels += len(cfg.extra_channels)
    if cfg.image_resize is not None:   # a learned resize happens in the network
        return (*cfg.image_resize, channels)
    return height, freq, channels


def normalize_columns(cadence: tf.Tensor) -> tf.Tensor:
    """Standardise each frequency column of each panel over time: ``(B, P, T, F)`` float32.

    Per panel and channel: subtract the mean over the ``T`` rows, divide by the standard deviation
    over them (plus ``COLUMN_NORM_EPSILON``, so a flat column stays finite): mean 0, std 1, L2 norm
    ``sqrt(T)``. The same definition as ``tfseti snippet-matching`` uses before matching (there
    scaled to unit L2 norm, for cosine similarity).
    """
    mean = tf.reduce_mean(cadence, axis=2, keepdims=True)
    centred = cadence - mean
    std = tf.sqrt(tf.reduce_mean(tf.square(centred), axis=2, keepdims=True))
    return centred / (std + COLUMN_NORM_EPSILON)


@functools.lru_cache(maxsize=64)
def _resize_matrix_numpy(size_in: int, size_out: int, method: str) -> np.ndarray:
    # Resizing is separable and linear: resizing the one-hot columns of an identity along one axis
    # gives the (out, in) matrix of that axis, with TF's own coefficients and edge handling.
    with tf.init_scope():   # eager even while a tf.function / tf.data map is being traced
        eye = tf.eye(size_in, dtype=tf.float32)[:, :, None, None]        # (in, in, 1, 1)
        out = tf.image.resize(eye, [size_out, 1], method=method, antialias=False)
        return np.ascontiguousarray(out.numpy()[:, :, 0, 0].T)          # (out, in)


def resize_matrix(size_in: int, size_out: int, method: str) -> tf.Tensor:
    """The ``(size_out, size_in)`` matrix that resizes one axis like ``tf.image.resize``."""
    return tf.constant(_resize_matrix_numpy(int(size_in), int(size_out), method))


def resize_images(images: tf.Tensor, size: tuple[int, int], method: str) -> tf.Tensor:
    """XLA-compilable ``tf.image.resize(images, size, method, antialias=False)`` for float images."""
    _, height, width, _ = images.shape
    if (height, width) == tuple(size):
        return images
    rows = tf.cast(resize_matrix(height, size[0], method), images.dtype)
    cols = tf.cast(resize_matrix(width, size[1], method), images.dtype)
    return tf.einsum("oh,bhwc,pw->bopc", rows, images, cols)


def make_view(cadence: tf.Tensor, cfg: ViewConfig) -> tf.Tensor:
    """Turn cadences ``(B, P, T, F)`` (P = 6, or 3 for ON-only shards) into images ``(B, H, W, C)``.

    Output is float32 with the static shape ``view_shape(cfg, P, T, F)`` (B as given).
    """
    cadence = tf.convert_to_tensor(cadence)
    if cadence.shape.rank != 4:
        raise ValueError(f"cadence batch: expected rank 4 (batch, panels, time, freq), "
                         f"got shape {cadence.shape}")
    _, panels, time, freq = cadence.shape
    _check_panels(cfg.name, panels, cfg.background, cfg.dedoppler.background)
    _check_extra_channels(cfg, panels)
    if cfg.name == "dedoppler":
        image = tf.transpose(dedoppler(cadence, cfg.dedoppler), [0, 2, 3, 1])    # (B, D, F, P)
        if cfg.image_resize is not None:
            image = resize_images(image, cfg.image_resize, cfg.resize_method)
        return image
    x = remove_background(cadence, cfg.background)
    if cfg.normalize_columns:
        x = normalize_columns(x)
    batch = tf.shape(x)[0]
    on = x if panels == 3 else tf.gather(x, ON_PANELS, axis=1)
    if cfg.name == "on":
        image = tf.reshape(on, [batch, 3 * time, freq, 1])
    elif cfg.name == "on_off":
        off = tf.gather(x, OFF_PANELS, axis=1)
        image = tf.stack([tf.reshape(on, [batch, 3 * time, freq]),
                          tf.reshape(off, [batch, 3 * time, freq])], axis=-1)
    else:
        image = tf.reshape(x, [batch, 6 * time, freq, 1])
    if "nmf" in cfg.extra_channels:   # the panels the view stacks, minus their NMF background
        residual = nmf_residual(x, cfg.nmf_rank, cfg.nmf_iterations)
        shown = residual if cfg.name == "all" else tf.gather(residual, ON_PANELS, axis=1)
        image = tf.concat([image, tf.reshape(shown, [batch, image.shape[1], freq, 1])], axis=-1)
    if cfg.image_resize is not None:
        image = resize_images(image, cfg.image_resize, cfg.resize_method)
    return image

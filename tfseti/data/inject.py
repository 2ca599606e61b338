"""Needle injection ("magic 1" of the 1st place) as a batched, seeded, XLA-compilable TF op.

``inject_needles(cadence, target, seed, cfg)`` adds a setigen needle to the ON panels of a
fraction ``cfg.p`` of the cadences of a batch and sets their target to 1 (a positive gets a
second needle). It runs on raw cadences ``(B, 6, T, F)`` (or ``(B, 3, T, F)`` ON-only shards)
before the view, like ``augment.shuffle_off_panels``, inside the compiled train step or a
``tf.data`` map: static shapes, stateless Philox draws (``tfseti.data.rng``), no Python callbacks.

It draws what ``setigen`` would draw (the reference; the tests compare pixel by pixel against
``tfseti.synth``, which calls ``setigen.Frame.add_signal``):

* the families, parameter ranges and frame timing of ``tfseti.synth`` (``families.Ranges``,
  ``cadence.FRAME``, ``CadenceConfig().snr``), not a second copy of them;
* setigen's paths (``constant_path``, ``squared_path``: f0 + a t^2 / 2, ``sine_path``:
  f0 + A sin(2 pi t / P) + d t), t-profiles (constant, ``periodic_gaussian_t_profile`` with
  ``pulse_direction="up"``, ``pnum=3``), f-profiles (``gaussian_f_profile``, ``sinc2_f_profile``
  with ``width_mode="fwhm"``), evaluated as ``Frame.add_signal`` does by default: at each row's start
  time and each channel's frequency, no sub-sample integration, no Doppler smearing;
* setigen's cadence clock: time counts from the start of panel 0 and panel ``i`` of the ABACAD
  cadence starts at ``i * (T dt + slew)`` (``CadenceSpec.panel_starts``), so the needle runs on
  through the OFF panels and the slews and is continuous across the three ON panels; ON-only
  inputs hold panels 0, 2, 4 of that clock;
* setigen's SNR: ``Frame.get_intensity(snr) = snr * noise_std / sqrt(T)``, the peak intensity per
  pixel. The noise std is measured from each ON panel of the sample itself (the panels are
  already normalised, so their scale is that of the data), the way setigen measures a frame that
  holds data: a 3-sigma clipped std, 5 iterations (``Frame._update_noise_frame_stats``), with the
  mean as the clipping centre instead of astropy's median (a median needs a sort per panel), and
  corrected for the clipping (Gaussian consistency factor, like 1.4826 for a MAD).
  Bright RFI and earlier needles are clipped away, so they do not inflate the needle.

The Kaggle panels were normalised after injection; with ``renormalise`` (default) each touched ON
panel gets back its own mean and std, so a needle does not change the panel statistics the model
sees. Every other panel, and every sample not drawn, is returned bit for bit.
"""

from __future__ import annotations

import math
import numpy as np
import tensorflow as tf

from tfseti.data import rng
from tfseti.io.kaggle import ON_PANELS
from tfseti.data.config import InjectConfig
from tfseti.synth.parameters import FAMILY_NAMES, FRAME

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
SINC2_FWHM = 0.442946470689452   # setigen's sinc2_f_profile(width_mode="fwhm"): crossing = w / 2 / this
PULSE_TERMS = 3                  # setigen periodic_gaussian_t_profile's default pnum
CLIP_SIGMA, CLIP_ITERS = 3.0, 5  # setigen Frame._update_noise_frame_stats (astropy sigma_clip)
# std of a unit Gaussian clipped at +-3 sigma: sqrt(1 - 6 phi(3) / (2 Phi(3) - 1)) = 0.98658. Dividing
# by it makes the clipped std an unbiased noise std (as 1.4826 does for the MAD).
_CLIP_CONSISTENCY = math.sqrt(1.0 - 2.0 * CLIP_SIGMA * math.exp(-0.5 * CLIP_SIGMA ** 2)
                              / math.sqrt(2.0 * math.pi) / math.erf(CLIP_SIGMA / math.sqrt(2.0)))
NOISE_ROW_STRIDE = 4             # noise_std measures every 4th row

_FAMILY_INDEX = {name: i for i, name in enumerate(FAMILY_NAMES)}
# Uniform draws per sample, one row each of a single Philox call (a fixed layout: adding a draw
# at the end never changes the others).
_U = ("apply", "family", "sign", "drift", "width", "period", "amplitude", "duty", "profile",
      "slew", "missing", "missing_panel", "snr", "start")


# ----------------------------------------------------------------------------- draws


def _family_table(cfg: InjectConfig) -> dict[str, np.ndarray]:
    """Per-family constants, indexed by the position in ``FAMILY_NAMES``."""
    r = cfg.ranges
    n = len(FAMILY_NAMES)
    table = {"drift": np.zeros((n, 2)), "width": np.zeros((n, 2)), "period": np.zeros((n, 2)),
             "amplitude": np.zeros((n, 2)), "duty": np.zeros((n, 2)), "sinc2_p": np.zeros(n)}
    for name, i in _FAMILY_INDEX.items():
        table["drift"][i] = {"squared": r.accel_hz_s2, "sine": r.sine_drift_hz_s}.get(name, r.drift_hz_s)
        table["width"][i] = r.broad_width_hz if name == "broad" else r.narrow_width_hz
        table["period"][i] = {"sine": r.sine_period_s, "pulsed": r.pulse_period_s}.get(name, (0.0, 0.0))
        table["amplitude"][i] = r.sine_amplitude_hz if name == "sine" else (0.0, 0.0)
        table["duty"][i] = r.pulse_duty if name == "pulsed" else (0.0, 0.0)
        if cfg.f_profiles:
            table["sinc2_p"][i] = cfg.f_profiles.count("sinc2") / len(cfg.f_profiles)
        else:
            table["sinc2_p"][i] = 0.5 if name == "broad" else 0.0
    return table


def _between(u, bounds, family):
    """``low + u (high - low)`` with the per-family ``bounds`` table ``(n, 2)``."""
    bounds = tf.gather(tf.constant(bounds, tf.float32), family)
    return bounds[:, 0] + u * (bounds[:, 1] - bounds[:, 0])


def panel_times(slew, tchans: int, dt: float = FRAME.dt) -> tf.Tensor:
    """``(B, 3, T)`` time of each row of the ON panels since the cadence start (setigen's clock:
    ``CadenceSpec.panel_times``); ON-only inputs hold cadence panels 0, 2, 4 too."""
    slots = tf.constant(ON_PANELS, tf.float32)
    starts = slots[None, :] * (tchans * dt + tf.cast(slew, tf.float32)[:, None])
    rows = tf.range(tchans, dtype=tf.float32) * dt
    return starts[:, :, None] + rows[None, None, :]


def path_offsets_hz(params: dict, times: tf.Tensor) -> tf.Tensor:
    """Centre frequency minus ``f_start`` (Hz) at ``times`` ``(B, ...)``: setigen's paths."""
    def per_sample(x):
        return tf.reshape(x, [-1] + [1] * (times.shape.rank - 1))

    family = per_sample(params["family"])
    drift = per_sample(params["drift"])
    period = per_sample(params["period"])
    sine = per_sample(params["amplitude"]) * tf.sin(
        (2.0 * math.pi) * times / tf.where(period > 0, period, 1.0))
    linear = drift * times
    squared = 0.5 * drift * tf.square(times)
    offsets = tf.where(family == _FAMILY_INDEX["squared"], squared, linear)
    return offsets + tf.where(family == _FAMILY_INDEX["sine"], sine, tf.zeros_like(sine))


def draw_needle_params(seed, batch, cfg: InjectConfig, tchans: int, fchans: int, p=None) -> dict:
    """Per-sample needle parameters, ``(B,)`` tensors, from one stateless ``[2]`` seed.

    ``family``: index into ``FAMILY_NAMES``; ``f_start``: channel of the centre at the cadence
    start (fractional, chosen as ``tfseti.synth`` does so that the path stays inside the band over
    the ON panels); ``drift``: Hz/s (Hz/s^2 for ``squared``); ``width``: FWHM in Hz; ``sinc2``;
    ``period`` (sine or pulse period, s); ``amplitude`` (sine, Hz); ``pulse_width`` (FWHM, s);
    ``snr``; ``slew`` (s); ``missing_on``: ON panel (0, 1, 2) the needle skips, -1 for none;
    ``applied``: bool.
    """
    p = cfg.p if p is None else p
    u = rng.uniform([len(_U), batch], seed)
    row = {name: u[i] for i, name in enumerate(_U)}
    table = _family_table(cfg)
    r = cfg.ranges

    chosen = tf.constant([_FAMILY_INDEX[name] for name in cfg.families], tf.int32)
    family = tf.gather(chosen, rng.to_int(row["family"], 0, len(cfg.families) - 1))
    sign = tf.where(row["sign"] < 0.5, -1.0, 1.0)
    period = _between(row["period"], table["period"], family)
    params = {
        "applied": row["apply"] < tf.cast(p, tf.float32),
        "family": family,
        "drift": sign * _between(row["drift"], table["drift"], family),
        "width": _between(row["width"], table["width"], family),
        "sinc2": row["profile"] < tf.gather(tf.constant(table["sinc2_p"], tf.float32), family),
        "period": period,
        "amplitude": _between(row["amplitude"], table["amplitude"], family),
        "pulse_width": period * _between(row["duty"], table["duty"], family),
        "snr": cfg.snr[0] + row["snr"] * (cfg.snr[1] - cfg.snr[0]),
        "slew": r.slew_s[0] + row["slew"] * (r.slew_s[1] - r.slew_s[0]),
        "missing_on": tf.where(row["missing"] < cfg.missing_prob,
                               rng.to_int(row["missing_panel"], 0, 2), -1),
    }
    # Start channel: tfseti.synth.cadence._fit_start over all ON rows.
    offsets = path_offsets_hz(params, panel_times(params["slew"], tchans)) / FRAME.df
    low_off = tf.reduce_min(offsets, axis=[1, 2])
    high_off = tf.reduce_max(offsets, axis=[1, 2])
    half = 0.5 * params["width"] / FRAME.df
    low = r.edge_margin_channels + half
    high = fchans - 1 - r.edge_margin_channels - half
    start_low, start_high = low - low_off, high - high_off
    centred = 0.5 * (low + high) - 0.5 * (low_off + high_off)
    params["f_start"] = tf.where(start_low > start_high, centred,
                                 start_low + row["start"] * (start_high - start_low))
    return params


# ----------------------------------------------------------------------------- drawing


def _t_profile(params: dict, times: tf.Tensor) -> tf.Tensor:
    """``(B, 3, T)`` relative intensity: 1, or setigen's periodic Gaussian pulses (peak 1)."""
    period = params["period"][:, None, None]
    safe_period = tf.where(period > 0, period, 1.0)
    sigma = tf.maximum(params["pulse_width"][:, None, None] * FWHM_TO_SIGMA, 1e-6)
    nearest = tf.round(times / safe_period - 0.25)   # half to even, as np.round
    pulses = tf.zeros_like(times)
    for k in range(-(PULSE_TERMS // 2), PULSE_TERMS // 2 + 1):
        centre = (4.0 * (nearest + k) + 1.0) / 4.0 * safe_period
        pulses += tf.exp(-tf.square(times - centre) / (2.0 * tf.square(sigma)))
    pulsed = params["family"][:, None, None] == _FAMILY_INDEX["pulsed"]
    return tf.where(pulsed, pulses, tf.ones_like(pulses))


def _f_profile(delta_hz: tf.Tensor, width: tf.Tensor, sinc2: tf.Tensor) -> tf.Tensor:
    """setigen's ``gaussian_f_profile`` / ``sinc2_f_profile(width_mode="fwhm")`` (truncated at
    the first zero) at offsets ``delta_hz`` from the centre; ``width`` and ``sinc2`` are ``(B,)``."""
    width = tf.reshape(width, [-1, 1, 1, 1])
    gaussian = tf.exp(-0.5 * tf.square(delta_hz / (width * FWHM_TO_SIGMA)))
    x = delta_hz / (0.5 * width / SINC2_FWHM)
    pix = math.pi * x
    small = tf.abs(x) < 1e-4
    sinc = tf.where(small, 1.0 - tf.square(pix) / 6.0, tf.sin(pix) / tf.where(small, 1.0, pix))
    sinc2_value = tf.where(tf.abs(x) < 1.0, tf.square(sinc), 0.0)
    return tf.where(tf.reshape(sinc2, [-1, 1, 1, 1]), sinc2_value, gaussian)


def needle_pattern(params: dict, noise_std, tchans: int, fchans: int) -> tf.Tensor:
    """The needle alone in the three ON panels, ``(B, 3, T, F)`` float32.

    ``noise_std`` ``(B, 3)`` (or broadcastable) is the noise std of each ON panel: the peak
    intensity is ``snr * noise_std / sqrt(T)`` (``setigen.Frame.get_intensity``). Zero in the
    ``missing_on`` panel. Pixel ``(t, j)`` is ``t_profile(t) * f_profile(f_j - path(t))`` with ``t``
    the row start time on the cadence clock and ``f_j`` channel ``j``'s frequency, as
    ``setigen.Frame.add_signal`` draws it by default.
    """
    times = panel_times(params["slew"], tchans)
    centre = tf.cast(params["f_start"], tf.float32)[:, None, None] + path_offsets_hz(params, times) / FRAME.df
    channels = tf.range(fchans, dtype=tf.float32)
    delta_hz = (channels[None, None, None, :] - centre[..., None]) * FRAME.df
    shape = _f_profile(delta_hz, tf.cast(params["width"], tf.float32), params["sinc2"])
    level = (tf.cast(params["snr"], tf.float32)[:, None] * tf.cast(noise_std, tf.float32)
             / math.sqrt(tchans))                                            # (B, 3)
    present = tf.range(3)[None, :] != tf.cast(params["missing_on"], tf.int32)[:, None]
    level = tf.where(present, level, 0.0)
    return shape * (level[:, :, None] * _t_profile(params, times))[..., None]


# ----------------------------------------------------------------------------- noise


def noise_std(panels: tf.Tensor, row_stride: int = NOISE_ROW_STRIDE) -> tf.Tensor:
    """Robust noise std of each panel ``(..., T, F) -> (...)``: setigen's 3-sigma clipped std
    (5 iterations), with the mean as the clipping centre (no sort under XLA), divided by the
    clipped std of a unit Gaussian so that pure Gaussian noise of std s gives s.

    Measured on every ``row_stride``-th row: 69 x 256 pixels of a Kaggle panel pin the std down
    to ~0.5 %, at a quarter of the cost (the clipping loop is most of the op's time on a CPU).
    """
    x = tf.cast(panels, tf.float32)[..., ::row_stride, :]
    keep = tf.ones_like(x, tf.bool)
    std = None
    for _ in range(CLIP_ITERS + 1):
        weight = tf.cast(keep, tf.float32)
        count = tf.maximum(tf.reduce_sum(weight, axis=[-2, -1], keepdims=True), 1.0)
        mean = tf.reduce_sum(x * weight, axis=[-2, -1], keepdims=True) / count
        mean_square = tf.reduce_sum(tf.square(x) * weight, axis=[-2, -1], keepdims=True) / count
        std = tf.sqrt(tf.maximum(mean_square - tf.square(mean), 0.0))
        keep = tf.abs(x - mean) <= CLIP_SIGMA * std
    return std[..., 0, 0] / _CLIP_CONSISTENCY


# ----------------------------------------------------------------------------- the op


def inject_needles(cadence: tf.Tensor, target: tf.Tensor, seed, cfg: InjectConfig, p=None):
    """Add a needle to the ON panels of each cadence with probability ``p`` (default ``cfg.p``).

    ``cadence``: ``(B, 6, T, F)`` ABACAD or ``(B, 3, T, F)`` ON only, any float dtype (the math
    is float32, the result is cast back). ``target``: ``(B,)``, hard or soft labels; where a needle
    is added it becomes 1. Returns ``(cadence, target, info)``; ``info`` holds the
    ``draw_needle_params`` of every sample (``applied`` says which were used), plus ``noise_std``
    and ``level`` ``(B, 3)``: the measured noise and the peak intensity added to each ON panel, in
    the input's units (before ``renormalise`` rescales the panel by its old std / new std, ~1).
    The frame resolution is ``tfseti.synth.cadence.FRAME``'s (df, dt of the Kaggle snippets).
    """
    cadence = tf.convert_to_tensor(cadence)
    target = tf.convert_to_tensor(target)
    if cadence.shape.rank != 4 or cadence.shape[1] not in (3, 6):
        raise ValueError(f"inject_needles: expected cadences (batch, 6 or 3 panels, time, freq), "
                         f"got shape {cadence.shape}")
    _, panels, tchans, fchans = cadence.shape
    on_index = ON_PANELS if panels == 6 else (0, 1, 2)
    params = draw_needle_params(seed, tf.shape(cadence)[0], cfg, tchans, fchans, p)

    on = tf.cast(tf.gather(cadence, on_index, axis=1), tf.float32)          # (B, 3, T, F)
    sigma = noise_std(on)
    pattern = needle_pattern(params, sigma, tchans, fchans)
    injected = on + pattern
    if cfg.renormalise:
        mean, var = tf.nn.moments(on, axes=[2, 3], keepdims=True)
        new_mean, new_var = tf.nn.moments(injected, axes=[2, 3], keepdims=True)
        scale = tf.sqrt(var) / tf.maximum(tf.sqrt(new_var), 1e-12)
        injected = (injected - new_mean) * scale + mean
    applied = params["applied"]
    touched = applied[:, None] & (tf.range(3)[None, :] != params["missing_on"][:, None])
    new_on = tf.where(touched[:, :, None, None], tf.cast(injected, cadence.dtype),
                      tf.gather(cadence, on_index, axis=1))
    if panels == 6:
        out = tf.stack([new_on[:, 0], cadence[:, 1], new_on[:, 1], cadence[:, 3], new_on[:, 2],
                        cadence[:, 5]], axis=1)
    else:
        out = new_on
    new_target = tf.where(applied, tf.ones_like(target), target)
    level = params["snr"][:, None] * sigma / math.sqrt(tchans)
    info = {**params, "noise_std": sigma, "level": tf.where(touched, level, 0.0)}
    return out, new_target, info


def needle_params_from_spec(spec) -> dict:
    """``draw_needle_params``-style parameters (batch of 1, numpy) of a ``tfseti.synth``
    ``CadenceSpec``'s needle: inject exactly the needle that ``make_cadence(spec)`` draws."""
    needle = spec.needle
    if needle is None:
        raise ValueError("needle_params_from_spec: the CadenceSpec has no needle (a negative)")
    shape = needle.shape
    missing = -1 if needle.missing_on_panel < 0 else ON_PANELS.index(needle.missing_on_panel)
    values = {"applied": True, "family": _FAMILY_INDEX[shape.family], "drift": shape.drift_rate,
              "width": shape.width, "sinc2": shape.f_profile == "sinc2", "period": shape.period,
              "amplitude": shape.amplitude, "pulse_width": shape.pulse_width, "snr": needle.snr,
              "slew": spec.slew, "missing_on": missing, "f_start": needle.f_start}
    dtypes = {"applied": np.bool_, "sinc2": np.bool_, "family": np.int32, "missing_on": np.int32}
    return {k: np.asarray([v], dtypes.get(k, np.float32)) for k, v in values.items()}


__all__ = ["inject_needles", "draw_needle_params", "needle_pattern",
           "needle_params_from_spec", "noise_std", "panel_times", "path_offsets_hz"]

"""Needle injection: fidelity to setigen (through tfseti.synth), placement, SNR scale, seeding, and
the op alone, in tf.data and under XLA."""

from dataclasses import replace

import numpy as np
import pytest

from tf_harness import MODES, prob, run, run_calls, seed
from tfseti.data.augmenter import Augmenter
from tfseti.data.config import AugmentConfig, InjectConfig, ViewConfig
from tfseti.data.inject import inject_needles, needle_params_from_spec, needle_pattern, noise_std
from tfseti.synth.cadence import (CadenceConfig, CadenceSpec, NeedleSpec, build_background,
                                  draw_cadence_spec, inject_needle, needle_track)
from tfseti.synth.families import NeedleShape
from tfseti.synth.parameters import FAMILY_NAMES

T, F = 273, 256
ON, OFF = [0, 2, 4], [1, 3, 5]


def noise(batch, panels=6, value_seed=0, dtype=np.float16, scale=1.0):
    rng = np.random.default_rng(value_seed)
    return (scale * rng.standard_normal((batch, panels, T, F))).astype(dtype)


def synth_reference(family: str, spec_seed: int, missing_prob: float):
    """setigen's needle alone, drawn by tfseti.synth (Frame.add_signal on the cadence clock)."""
    spec = draw_cadence_spec(np.random.default_rng(spec_seed), 1,
                             CadenceConfig(families=(family,), rfi=False, missing_prob=missing_prob))
    spec = replace(spec, bandpass_tilt=0.0, bandpass_ripple=(), bandpass_phase=())  # flat receiver
    cadence = build_background(spec)
    before = np.stack([frame.data.copy() for frame in cadence])
    inject_needle(cadence, spec, spec.needle)
    return spec, np.stack([frame.data for frame in cadence]) - before, cadence[0].noise_std


def spec_from_info(info: dict, b: int) -> CadenceSpec:
    """The tfseti.synth spec of the needle the op says it drew for sample ``b``."""
    family = FAMILY_NAMES[int(info["family"][b])]
    shape = NeedleShape(family, drift_rate=float(info["drift"][b]), width=float(info["width"][b]),
                        f_profile="sinc2" if info["sinc2"][b] else "gaussian",
                        period=float(info["period"][b]), amplitude=float(info["amplitude"][b]),
                        pulse_width=float(info["pulse_width"][b]))
    missing = int(info["missing_on"][b])
    needle = NeedleSpec(shape, f_start=float(info["f_start"][b]), snr=float(info["snr"][b]),
                        missing_on_panel=-1 if missing < 0 else ON[missing])
    return CadenceSpec(noise_seed=0, slew=float(info["slew"][b]), needle=needle)


def check_on_track(excess_on: np.ndarray, spec: CadenceSpec, min_fraction=0.5):
    """The needle's centre in each bright row of each ON panel is on the synth's track: the
    centroid of the excess within one FWHM of the row's brightest channel is within a channel of
    it (a tenth of the FWHM for broad needles, whose flat top the noise moves about)."""
    track = needle_track(spec)[ON]                           # (3, T) channels, NaN if absent
    fwhm = spec.needle.shape.width / spec.frame.df
    tolerance = max(1.01, 0.1 * fwhm)
    channels = np.arange(F)
    peak = excess_on.max(axis=-1)
    for k in range(3):
        if np.isnan(track[k]).all():
            continue
        rows = peak[k] > min_fraction * peak.max()          # pulsed needles: the pulses
        assert rows.sum() > 10
        brightest = excess_on[k].argmax(-1)
        near = np.abs(channels[None, :] - brightest[:, None]) <= max(fwhm, 1.0)
        weight = np.where(near, np.maximum(excess_on[k], 0), 0)
        centre = (weight * channels).sum(-1) / np.maximum(weight.sum(-1), 1e-12)
        inside = (track[k] > fwhm) & (track[k] < F - 1 - fwhm) & rows
        assert inside.sum() > 10
        np.testing.assert_array_less(np.abs(centre[inside] - track[k][inside]), tolerance)


# ----------------------------------------------------------------------------- config


def test_config_validation():
    assert not InjectConfig().active and InjectConfig(p=0.5).active
    assert InjectConfig(families=["sine", "squared"]).families == ("sine", "squared")
    for bad in (dict(p=1.5), dict(p=-0.1), dict(missing_prob=2.0), dict(families=("spiral",)),
                dict(families=()), dict(snr=(0.0, 10.0)), dict(snr=(20.0, 10.0)),
                dict(f_profiles=("box",)), dict(f_profiles=("sinc2", "sinc2")), dict(ranges={"a": 1})):
        with pytest.raises(ValueError, match="InjectConfig"):
            InjectConfig(**bad)
    with pytest.raises(ValueError, match="AugmentConfig.inject"):
        AugmentConfig(inject={"p": 0.5})


def test_recipe_table_builds_the_config():
    from tfseti import config as config_lib   # the loader of the recipes
    cfg = config_lib.from_dict(AugmentConfig, {"inject": {"p": 0.5, "families": ["sine", "squared"],
                                                            "snr": [5, 20], "missing_prob": 0.1}})
    assert cfg.inject == InjectConfig(p=0.5, families=("sine", "squared"), snr=(5.0, 20.0),
                                      missing_prob=0.1)


# ----------------------------------------------------------------------------- fidelity


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_pattern_matches_setigen(family):
    for spec_seed, missing_prob in ((1, 0.0), (2, 1.0)):
        spec, reference, frame_noise = synth_reference(family, spec_seed, missing_prob)
        assert np.all(reference[OFF] == 0)
        ref = reference[ON]
        ours = needle_pattern(needle_params_from_spec(spec), np.full((1, 3), frame_noise, np.float32),
                              T, F).numpy()[0]
        assert np.corrcoef(ref.ravel(), ours.ravel())[0, 1] >= 0.99
        assert abs(ours.sum() / ref.sum() - 1) < 0.02
        lit = ref.max(-1) > 0.05 * ref.max()                   # rows with signal
        assert lit.sum() > 100
        assert np.abs(ref.argmax(-1) - ours.argmax(-1))[lit].max() <= 1
        absent = spec.needle.missing_on_panel
        if absent >= 0:
            assert np.all(ours[ON.index(absent)] == 0) and np.all(ref[ON.index(absent)] == 0)
        check_on_track(ours, spec, min_fraction=0.5)


def test_drift_sign_and_continuity_across_off_gap():
    """Linear needles: the row of panel 2's start lies where panel 0's line, extended through the
    OFF panel and both slews, arrives; a negative drift goes down in channel."""
    base = {"applied": [True, True], "family": [0, 0], "drift": [0.3, -0.3], "width": [6.0, 6.0],
            "sinc2": [False, False], "period": [0.0, 0.0], "amplitude": [0.0, 0.0],
            "pulse_width": [0.0, 0.0], "snr": [30.0, 30.0], "slew": [25.0, 25.0],
            "missing_on": [-1, -1], "f_start": [20.0, 230.0]}
    params = {k: np.asarray(v, np.int32 if k in ("family", "missing_on") else
                            bool if k in ("applied", "sinc2") else np.float32) for k, v in base.items()}
    peaks = needle_pattern(params, np.ones((2, 3), np.float32), T, F).numpy().argmax(-1)  # (2, 3, T)
    dt, df = 1.073741824, 2.7939677238464355
    per_row = 0.3 * dt / df                                   # channels per row
    panel_start_rows = 2 * (T * dt + 25.0) / dt               # panel 2 starts this many rows later
    for b, sign in ((0, 1), (1, -1)):
        assert np.all(sign * np.diff(peaks[b].ravel().astype(float)[:T]) >= 0)
        expected = base["f_start"][b] + sign * per_row * np.array([0, 1, 2]) * panel_start_rows
        np.testing.assert_allclose(peaks[b, :, 0], expected, atol=1.0)
    # the gap is counted: continuing panel 0 without the gap would be far off
    assert abs(peaks[0, 1, 0] - (20 + per_row * T)) > 20


# ----------------------------------------------------------------------------- the op


def _op(cfg):
    def fn(cadence, target, op_seed, p):
        out, new_target, info = inject_needles(cadence, target, op_seed, cfg, p=p)
        return out, new_target, {k: info[k] for k in ("applied", "family", "f_start", "drift", "width",
                                                       "sinc2", "period", "amplitude", "pulse_width",
                                                       "snr", "slew", "missing_on", "noise_std")}
    return fn


BRIGHT = InjectConfig(p=1.0, snr=(80.0, 120.0))


@pytest.mark.parametrize("mode", MODES)
def test_inject_op(mode):
    x = noise(6)
    y = np.array([0, 0.3, 1, 0.7, 0, 1], np.float32)
    calls = [(x, y, seed(1), prob(1.0)), (x, y, seed(2), prob(1.0)), (x, y, seed(1), prob(0.0))]
    (out, target, info), (out2, _, info2), (same, target0, info0) = run_calls(mode, _op(BRIGHT), calls)

    assert out.dtype == np.float16
    np.testing.assert_array_equal(out[:, OFF], x[:, OFF])                 # OFF panels untouched
    assert info["applied"].all() and np.all(target == 1)                # soft labels -> 1
    assert len(set(info["family"])) >= 3 and len(set(np.round(info["f_start"], 3))) == 6
    assert not np.allclose(info["f_start"], info2["f_start"])          # another seed, other needles
    np.testing.assert_allclose(info["noise_std"], 1.0, atol=0.03)
    excess = out.astype(np.float32) - x.astype(np.float32)
    for b in range(6):
        assert np.abs(excess[b, ON]).max() > 1.0
        check_on_track(excess[b, ON], spec_from_info(info, b))

    np.testing.assert_array_equal(same, x)                               # p = 0: identity
    np.testing.assert_array_equal(target0, y)
    assert not info0["applied"].any()

    if mode != "eager":   # same seed, same batch, wherever it runs (up to float16 rounding)
        eager_out, eager_target, eager_info = run("eager", _op(BRIGHT), *calls[0])
        np.testing.assert_allclose(out.astype(np.float32), eager_out.astype(np.float32), atol=8e-3)
        np.testing.assert_array_equal(info["family"], eager_info["family"])


def test_on_only_cadences_get_the_same_needle_in_all_three_panels():
    x6 = noise(4, value_seed=3)
    x3 = x6[:, ON]
    out6, _, info6 = inject_needles(x6, np.zeros(4, np.float32), seed(7), BRIGHT)
    out3, target3, info3 = inject_needles(x3, np.zeros(4, np.float32), seed(7), BRIGHT)
    np.testing.assert_array_equal(out3.numpy(), out6.numpy()[:, ON])
    assert np.all(target3.numpy() == 1)
    for b in range(4):
        check_on_track(out3.numpy()[b].astype(np.float32) - x3[b].astype(np.float32),
                       spec_from_info({k: v.numpy() for k, v in info3.items()}, b))


def test_missing_on_panel_is_left_untouched():
    x = noise(6, value_seed=4)
    out, _, info = inject_needles(x, np.zeros(6, np.float32), seed(3),
                                  replace(BRIGHT, missing_prob=1.0))
    out, missing = out.numpy(), info["missing_on"].numpy()
    assert set(missing) <= {0, 1, 2} and len(set(missing)) > 1
    for b in range(6):
        for k, panel in enumerate(ON):
            changed = np.any(out[b, panel] != x[b, panel])
            assert changed == (k != missing[b])


def test_snr_scale_relative_to_each_sample_noise():
    """setigen: peak intensity = snr * noise_std / sqrt(T), so the sum along the path over the T
    rows of a panel, in units of the noise of that sum (noise_std * sqrt(T)), is the SNR."""
    scales = np.array([1.0, 3.0, 0.5], np.float32)
    x = noise(3, value_seed=5, dtype=np.float32) * scales[:, None, None, None]
    x[2, :, :, 100] += 40.0    # bright zero-drift RFI in every panel: must not inflate the needle
    x[2, :, 150:160, :] += 10.0  # and a broadband burst
    measured = {}
    for snr in (15.0, 30.0):
        cfg = InjectConfig(p=1.0, families=("linear",), f_profiles=("gaussian",), snr=(snr, snr),
                           renormalise=False)
        out, _, info = inject_needles(x, np.zeros(3, np.float32), seed(11), cfg)
        excess = (out.numpy() - x)[:, ON]                                     # the needle alone
        sigma_ch = info["width"].numpy() / 2.7939677238464355 / (2 * np.sqrt(2 * np.log(2)))
        level = excess.sum(-1).mean(-1) / (sigma_ch[:, None] * np.sqrt(2 * np.pi))  # (B, 3) peak
        measured[snr] = level * np.sqrt(T) / scales[:, None]
        np.testing.assert_allclose(measured[snr], snr, rtol=0.05)
    np.testing.assert_allclose(measured[30.0] / measured[15.0], 2.0, rtol=1e-3)


def test_noise_estimate_is_robust():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, T, F)).astype(np.float32) * np.array([1.0, 2.0, 0.5])[:, None, None]
    x[:, :, 30] += 50.0
    x[:, 100:103, :] += 20.0
    np.testing.assert_allclose(noise_std(x).numpy(), [1.0, 2.0, 0.5], rtol=0.02)


def test_renormalise_keeps_panel_statistics():
    x = noise(4, value_seed=8, dtype=np.float32)
    out, _, _ = inject_needles(x, np.zeros(4, np.float32), seed(9), BRIGHT)
    out = out.numpy()
    assert np.abs(out[:, ON] - x[:, ON]).max() > 1.0
    np.testing.assert_allclose(out[:, ON].mean(axis=(2, 3)), x[:, ON].mean(axis=(2, 3)), atol=1e-4)
    np.testing.assert_allclose(out[:, ON].std(axis=(2, 3)), x[:, ON].std(axis=(2, 3)), rtol=1e-4)


def test_augmenter_injects_before_the_view_and_keeps_other_draws():
    batch = {"cadence": noise(4, value_seed=10), "target": np.zeros(4, np.float32)}
    base = AugmentConfig(seed=3, off_shuffle_p=0.5, vflip_p=0.5)
    plain = Augmenter(ViewConfig("all"), base)
    injecting = Augmenter(ViewConfig("all"), replace(base, inject=InjectConfig(p=1.0, snr=(80, 80))))
    out0, info0 = plain(batch, step=5, with_info=True)
    out1, info1 = injecting(batch, step=5, with_info=True)
    assert np.all(out1["target"].numpy() == 1) and np.all(out0["target"].numpy() == 0)
    for name in ("off_shuffle", "vflip"):                     # fixed sub-streams: same draws
        np.testing.assert_array_equal(info0[name].numpy(), info1[name].numpy())
    assert info1["inject"]["applied"].numpy().all()
    diff = np.abs(out1["image"].numpy() - out0["image"].numpy())[..., 0]   # (B, 6T, F)
    rows = diff.reshape(4, 6, T, F).max(axis=(2, 3))                       # per stacked panel
    order = info1["off_shuffle"].numpy()
    flipped = info1["vflip"].numpy()
    for b in range(4):
        panels = order[b][::-1] if flipped[b] else order[b]                 # input panel per slot
        for slot, panel in enumerate(panels):
            assert (rows[b, slot] > 0.5) == (panel in ON)

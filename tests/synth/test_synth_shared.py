"""``--shared-background``: cadences cut from one wider observation share their overlapping
background, carry their own needle, are recorded in truth.csv and are reproducible."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest

from tfseti.io.kaggle import OFF_PANELS, ON_PANELS, KaggleDataset
from tfseti.synth import (CadenceSpec, NeedleShape, NeedleSpec, RFISpec, SharedCadenceSpec, generate_dataset,
                          make_shared_cadence, make_snippets, needle_track)
from tfseti.synth.__main__ import main as synth_main


def _load(root, split="train"):
    truth = pd.read_csv(root / "truth.csv", dtype={"id": str})
    reader = KaggleDataset(str(root), split)
    return truth, {cid: reader.load(cid).astype(np.float64) for cid in truth.id}


def _affine_residual(a, b):
    """Per panel, how far ``a`` is from the best ``alpha b + beta`` (RMS residual / std of a)."""
    worst = 0.0
    for pa, pb in zip(a, b):
        design = np.stack([pb.ravel(), np.ones(pb.size)], axis=1)
        coef, *_ = np.linalg.lstsq(design, pa.ravel(), rcond=None)
        worst = max(worst, float(np.std(pa.ravel() - design @ coef) / np.std(pa)))
    return worst


def test_overlapping_columns_share_the_background_up_to_normalisation(tmp_path):
    assert synth_main(["--out", str(tmp_path), "--n-train", "6", "--n-test", "0", "--positive-rate", "0",
                       "--shared-background", "3", "--shared-width", "2", "--seed", "3", "--no-progress"]) == 0
    truth, arrays = _load(tmp_path)
    assert sorted(truth.group.unique()) == [0, 1] and (truth.groupby("group").size() == 3).all()
    assert truth.channel_offset.between(0, 256).all() and (truth.n_rfi > 0).any()
    n_pairs = 0
    for (_, a), (_, b) in itertools.combinations(truth.iterrows(), 2):
        delta = b.channel_offset - a.channel_offset          # a's channel j is b's channel j - delta
        lo, hi = max(0, delta), min(256, 256 + delta)
        overlap_a = arrays[a.id][:, :, lo:hi]
        overlap_b = arrays[b.id][:, :, lo - delta:hi - delta]
        if a.group == b.group and hi - lo >= 8:
            # Same observation: the same values, each snippet only normalised per panel on its own.
            assert _affine_residual(overlap_a, overlap_b) < 2e-3
            # ... and not merely similar: a one-channel misalignment is unrelated noise.
            if hi - lo > 9:
                assert _affine_residual(arrays[a.id][:, :, lo + 1:hi], arrays[b.id][:, :, lo - delta:hi - delta - 1]) > 0.5
            n_pairs += 1
        elif a.group != b.group:
            assert _affine_residual(arrays[a.id][:, :, :64], arrays[b.id][:, :, :64]) > 0.9
    assert n_pairs >= 4


def test_each_snippet_gets_its_own_needle_in_its_own_channels():
    observation = CadenceSpec(noise_seed=5, frame=dataclasses.replace(CadenceSpec(0).frame, fchans=512),
                              rfi=(RFISpec("zero_drift", f_start=300.0, snr=60.0, width=6.0),))
    needle = NeedleSpec(NeedleShape("linear", drift_rate=0.1, width=6.0), f_start=40.0, snr=400.0)
    with_needle = SharedCadenceSpec(observation, offset=200, needle=needle)
    without = SharedCadenceSpec(observation, offset=150)
    a, b = (x.astype(np.float64) for x in make_snippets(observation, [with_needle, without]))
    # Rebuilding either alone gives the same bytes (the wide frames are restored between snippets).
    assert np.array_equal(make_shared_cadence(with_needle), a.astype(np.float16))
    assert np.array_equal(make_shared_cadence(without), b.astype(np.float16))
    track = needle_track(dataclasses.replace(observation, needle=needle))   # snippet channels
    rows = np.arange(a.shape[1])
    for panel in ON_PANELS:
        channels = np.round(track[panel]).astype(int)
        assert a[panel, rows, channels].mean() > 3.0                # the needle where the truth says
        assert b[panel, rows, channels + 50].mean() < 1.0           # the same sky in b: no needle
    # No needle in OFF panels: their overlap with the needle-free snippet is the same background.
    assert _affine_residual(a[list(OFF_PANELS), :, :206], b[list(OFF_PANELS), :, 50:]) < 2e-3
    # The shared RFI line sits at observation channel 300: channel 100 of a, 150 of b.
    assert a[:, :, 100].mean() > 2.0 and b[:, :, 150].mean() > 2.0
    assert abs(a[:, :, 90].mean()) < 0.5 and abs(b[:, :, 140].mean()) < 0.5


def test_shared_truth_rebuilds_bytes_and_workers_do_not_matter(tmp_path):
    kwargs = dict(n_train=5, n_test=3, positive_rate=0.5, snr=(20, 30), progress=False,
                  shared_background=2, shared_width=3, seed=4)
    generate_dataset(tmp_path / "w1", workers=1, **kwargs)
    generate_dataset(tmp_path / "w2", workers=2, **kwargs)
    one = pd.read_csv(tmp_path / "w1" / "truth.csv", dtype={"id": str})
    two = pd.read_csv(tmp_path / "w2" / "truth.csv", dtype={"id": str})
    pd.testing.assert_frame_equal(one, two)
    # groups of 2 in index order per split, numbered over both splits: train 3 groups, test 2
    assert sorted(one[one.split == "train"].group.unique()) == [0, 1, 2]
    assert sorted(one[one.split == "test"].group.unique()) == [3, 4]
    for row in one.itertuples():
        relpath = f"{row.split}/{row.id[0]}/{row.id}.npy"
        written = np.load(tmp_path / "w1" / relpath, allow_pickle=False)
        assert np.array_equal(written.view(np.uint16),
                              np.load(tmp_path / "w2" / relpath, allow_pickle=False).view(np.uint16))
        spec = SharedCadenceSpec.from_json(row.spec)
        assert spec.offset == row.channel_offset and spec.target == row.target
        assert np.array_equal(make_shared_cadence(spec).view(np.uint16), written.view(np.uint16))


@pytest.mark.parametrize("kwargs,message", [(dict(shared_background=0), "shared_background"),
                                            (dict(shared_width=0), "shared_width")])
def test_rejects_bad_shared_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_dataset(tmp_path, n_train=2, n_test=0, progress=False, **kwargs)
    with pytest.raises(ValueError, match="offset"):
        SharedCadenceSpec(CadenceSpec(noise_seed=0), offset=1)     # a 256-channel observation has 1 window

"""The scan's classical window scores without TensorFlow (``tfseti.dedoppler.window_scores``): the
same numbers as the TensorFlow search (``tfseti.dedoppler.scores``), and a scan without ``--model``
that never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scan_helpers import shared_cadences

from tfseti.data.config import DedopplerConfig
from tfseti.dedoppler import window_scores as ws


@pytest.mark.parametrize("cfg, shape", [
    # the scan's config for GBT high-resolution files (16 integrations, 2-integration slew)
    (DedopplerConfig(max_drift=3.4, drifts=419, block=1, background="off_median", panel_gap=2),
     (6, 6, 16, 256)),
    # the Kaggle snippets' (blocks of 7 rows, per-panel medians, a short last block)
    (DedopplerConfig(max_drift=0.2, drifts=65, block=7, background="panel_median", panel_gap=18),
     (3, 6, 40, 128)),
])
def test_numpy_scores_equal_the_tensorflow_ones(cfg, shape):
    from tfseti.data import drift_sums as ds
    from tfseti.dedoppler.scores import score_batch

    rng = np.random.default_rng(1)
    x = rng.chisquare(10, shape).astype(np.float32)
    n, _, time, freq = shape
    for p in (0, 2, 4):                       # a needle in the ON panels of the first cadence
        for t in range(time):
            x[0, p, t, freq // 3 + (p * (time + 2) + t) // 8] += 20
    x[1, :, :, freq // 2] += 50               # a line in all six panels of the second
    for reference in ("cadence", "panel"):
        np.testing.assert_array_equal(ws.block_shifts(cfg, reference, 6, time),
                                      ds.block_shifts(DedopplerConfig(**{**cfg.__dict__, "reference": reference}),
                                                      6, time))
    ours, theirs = ws.score_batch(x, cfg), score_batch(x, cfg)
    for name in ("straight_line", "two_of_three", "panel_maxima"):
        np.testing.assert_allclose(ours.scores[name], theirs.scores[name], atol=2e-5, rtol=1e-5)
    np.testing.assert_array_equal(ours.channel, theirs.channel)
    np.testing.assert_array_equal(ours.drift, theirs.drift)
    np.testing.assert_allclose(ours.start_channel, theirs.start_channel)
    np.testing.assert_allclose(ours.panel_snr, theirs.panel_snr, atol=2e-5, rtol=1e-5)
    assert ours.pattern == theirs.pattern
    # the needle scores above the line present in every panel (vetoed by the OFF panels)
    assert ours.scores["two_of_three"][0] > ours.scores["two_of_three"][1] + 3
    assert np.isnan(ws.score_batch(x, cfg, panel_maxima=False).scores["panel_maxima"]).all()


def test_a_scan_without_a_model_imports_no_tensorflow(tmp_path_factory, worker_id, tmp_path):
    paths = shared_cadences(tmp_path_factory, worker_id)["h5"]
    code = textwrap.dedent(f"""
        import sys
        from tfseti.scan.__main__ import main
        assert main(["--cadence", {",".join(paths)!r}, "--out", {str(tmp_path / "out")!r},
                     "--top", "2", "--no-progress"]) == 0
        loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
        print("TF:", loaded[:3])
        assert not loaded
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "TF: []" in done.stdout and "hit(s)" in done.stdout

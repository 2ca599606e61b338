"""``python -m tfseti.dedoppler``: a submission and a hit table over Kaggle folders and shards,
the scores of ``score_batch`` (the numpy + Numba kernel, equal to the TensorFlow op:
``tests/scan/test_window_scores.py``), without TensorFlow for a Kaggle folder, and the same clear
errors as ``tfseti.predict``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from harness import write_kaggle_dir, write_shard_manifest

from tfseti.data.config import DedopplerConfig
from tfseti.data.drift_sums import drift_rates, reference_rows
from tfseti.dedoppler import __main__ as cli
from tfseti.dedoppler.scores import SCORES
from tfseti.dedoppler.window_scores import score_batch
from tfseti.io.kaggle import KaggleDataset, cadence_relpath
from tfseti.io.records import encode_example


def add_needle(cadence: np.ndarray, channel: int, drift_index: int, level: float = 1.0) -> np.ndarray:
    cfg = DedopplerConfig()
    out = cadence.astype(np.float32)
    offsets = reference_rows(cfg, 6, out.shape[1])
    rate = drift_rates(cfg)[drift_index]
    for p in (0, 2, 4):
        for t in range(out.shape[1]):
            out[p, t, int(round(channel + rate * offsets[p, t]))] += level
    return out.astype(np.float16)


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    root = tmp_path_factory.mktemp("dedoppler") / "kaggle"
    frames = write_kaggle_dir(root, n_train=6, n_test=5, seed=4)
    needle_id = frames["test"]["id"].iloc[2]
    path = root / cadence_relpath("test", needle_id)
    np.save(path, add_needle(np.load(path, allow_pickle=False), channel=128, drift_index=20))
    return {"root": str(root), "frames": frames, "needle": needle_id}


def test_kaggle_folder_submission_and_hits(kaggle, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert cli.main([kaggle["root"], "--out", str(out), "--no-progress"]) == 0
    assert "cadences/s" in capsys.readouterr().out
    submission = pd.read_csv(out, dtype={"id": str})
    expected = list(pd.read_csv(os.path.join(kaggle["root"], "sample_submission.csv"), dtype={"id": str})["id"])
    assert list(submission["id"]) == expected and list(submission.columns) == ["id", "target"]
    hits = pd.read_csv(tmp_path / "scores_hits.csv", dtype={"id": str, "pattern": str})
    assert list(hits["id"]) == expected
    assert set(SCORES) <= set(hits.columns)
    np.testing.assert_allclose(submission["target"], hits["two_of_three"], rtol=1e-6)
    # the needle cadence wins every score, and its hit is where the needle is
    best = hits.set_index("id")
    for score in SCORES:
        assert best[score].idxmax() == kaggle["needle"], score
    hit = best.loc[kaggle["needle"]]
    assert abs(hit["reference_channel"] - 128) <= 1
    assert abs(hit["drift_ch_per_row"] - drift_rates(DedopplerConfig())[20]) < 1e-6
    assert np.isclose(hit["drift_hz_s"], hit["drift_ch_per_row"] * cli.CHANNEL_HZ / cli.ROW_SECONDS)
    assert hit["pattern"] == "101010"

    # the scores are score_batch's on the same cadences
    dataset = KaggleDataset(kaggle["root"], "test")
    direct = score_batch(np.stack([dataset.load(i) for i in expected]), DedopplerConfig())
    np.testing.assert_allclose(hits["straight_line"], direct.scores["straight_line"], rtol=1e-5, atol=1e-5)


def test_train_split_and_test_shards_give_the_same_scores(kaggle, tmp_path):
    train_out = tmp_path / "train.csv"
    assert cli.main([kaggle["root"], "--split", "train", "--out", str(train_out), "--no-progress",
                     "--score", "straight_line"]) == 0
    assert sorted(pd.read_csv(train_out, dtype={"id": str})["id"]) == sorted(kaggle["frames"]["train"]["id"])

    dataset = KaggleDataset(kaggle["root"], "test")
    ids = list(dataset.ids())
    shards = tmp_path / "shards"
    shards.mkdir()
    for k in range(2):
        with tf.io.TFRecordWriter(str(shards / f"test-{k:05d}-of-00002.tfrec")) as writer:
            for cid in ids[k::2]:
                writer.write(encode_example(cid, dataset.load(cid)))
    write_shard_manifest(shards)
    folder_out, shard_out = tmp_path / "folder.csv", tmp_path / "shards.csv"
    assert cli.main([kaggle["root"], "--out", str(folder_out), "--no-progress"]) == 0
    assert cli.main([str(shards), "--out", str(shard_out), "--no-progress"]) == 0
    a = pd.read_csv(folder_out, dtype={"id": str}).set_index("id").sort_index()
    b = pd.read_csv(shard_out, dtype={"id": str}).set_index("id").sort_index()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5)


def test_missing_file_is_one_clear_error(kaggle, tmp_path, capsys):
    broken = tmp_path / "broken"
    write_kaggle_dir(broken, n_train=2, n_test=3, seed=5)
    victim = pd.read_csv(broken / "sample_submission.csv", dtype={"id": str})["id"].iloc[0]
    os.remove(broken / cadence_relpath("test", victim))
    assert cli.main([str(broken), "--out", str(tmp_path / "x.csv"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and victim in err and "no .npy file" in err


def test_on_only_shards_are_refused(tmp_path, capsys):
    shards = tmp_path / "on_only"
    shards.mkdir()
    cadence = np.random.default_rng(0).standard_normal((3, 273, 256)).astype(np.float16)
    with tf.io.TFRecordWriter(str(shards / "test-00000-of-00001.tfrec")) as writer:
        writer.write(encode_example("0123456789abcde", cadence))
    write_shard_manifest(shards)
    assert cli.main([str(shards), "--out", str(tmp_path / "x.csv"), "--no-progress"]) == 2
    assert "6-panel cadences" in capsys.readouterr().err


def test_a_smaller_last_batch_is_padded_and_reuses_the_trace():
    # the TensorFlow op's padding (the de-Doppler view's and the library's; the command uses the
    # numpy kernel)
    from tfseti.dedoppler.scores import _score_function
    from tfseti.dedoppler.scores import score_batch as tf_score_batch

    cadences = np.random.default_rng(3).standard_normal((5, 6, 273, 256)).astype(np.float16)
    cfg = DedopplerConfig(drifts=9)
    full = tf_score_batch(cadences, cfg)
    traced = _score_function(cfg, 273, True).experimental_get_tracing_count()
    assert traced >= 1
    part = tf_score_batch(cadences[:3], cfg, pad_to=5)
    assert _score_function(cfg, 273, True).experimental_get_tracing_count() == traced  # no new trace
    for name, values in full.scores.items():
        assert part.scores[name].shape == (3,)
        np.testing.assert_allclose(part.scores[name], values[:3], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(part.channel, full.channel[:3])
    assert part.pattern == full.pattern[:3] and part.panel_snr.shape == (3, 6)


def test_leaving_out_the_panel_maxima_changes_nothing_else():
    cadences = np.random.default_rng(4).standard_normal((4, 6, 273, 256)).astype(np.float16)
    cadences[1, ::2, :, 100] += 2.0                      # something to find in the ON panels
    cfg = DedopplerConfig(drifts=9)
    full, lean = score_batch(cadences, cfg), score_batch(cadences, cfg, panel_maxima=False)
    assert np.isnan(lean.scores["panel_maxima"]).all() and np.isfinite(full.scores["panel_maxima"]).all()
    for name in ("straight_line", "two_of_three"):
        np.testing.assert_allclose(lean.scores[name], full.scores[name], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(lean.channel, full.channel)
    np.testing.assert_allclose(lean.panel_snr, full.panel_snr, rtol=1e-6, atol=1e-6)
    assert lean.pattern == full.pattern and lean.channel[1] == 100


def test_a_kaggle_folder_is_scored_without_tensorflow(kaggle, tmp_path):
    # the classical search of Kaggle cadences needs no TensorFlow (only reading shards does)
    code = textwrap.dedent(f"""
        import sys
        from tfseti.dedoppler.__main__ import main
        assert main([{kaggle["root"]!r}, "--out", {str(tmp_path / "s.csv")!r}, "--no-progress"]) == 0
        loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
        print("TF:", loaded[:3])
        assert not loaded
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "TF: []" in done.stdout and "cadences/s" in done.stdout

"""``python -m tfseti.explain`` on the shared tiny run (2 folds, plain CNN, view ``on`` resized
to 32 x 32): each id explained by the network that held it out, scores equal to ``oof.csv``,
peaks where an independent mapping of the view's heat puts them; the other views through
untrained networks saved as a fold; and every error as one ``error:`` line."""

from __future__ import annotations

import json
import os
import shutil

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from report.report_helpers import copy_fold, shared_tiny_run

from tfseti.data.config import ViewConfig
from tfseti.data.drift_sums import drift_rates
from tfseti.data.views import make_view, view_shape
from tfseti.explain.__main__ import main
from tfseti.explain.gradcam import gradcam
from tfseti.explain.run import explain_run
from tfseti.io.kaggle import KaggleDataset, ON_PANELS
from tfseti.models import create_model, load_network

pytestmark = pytest.mark.slow
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, worker_id):
    return shared_tiny_run(tmp_path_factory, worker_id)


@pytest.fixture(scope="module")
def oof(trained):
    return pd.read_csv(os.path.join(trained["run"], "oof.csv"), dtype={"id": str})


def read_csv(path: str) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"id": str, "panel": "Int64", "row": "Int64",
                                    "channel": "Int64"})


def expected_peak(fold_dir: str, cadence: np.ndarray):
    """The peak by hand: Grad-CAM on the 32 x 32 view, resized back to (3 x 273, 256) with
    tf.image.resize, argmax, row block -> ON panel."""
    net = load_network(os.path.join(fold_dir, "model.keras"))
    view = ViewConfig(name="on", resize=(32, 32), resize_method="area")
    image = make_view(tf.cast(cadence[None], tf.float16), view)
    heat = gradcam(net, image).heat[0]
    if heat.max() == 0:
        return None
    full = tf.image.resize(heat[None, :, :, None], (3 * 273, 256)).numpy()[0, :, :, 0]
    row, channel = np.unravel_index(np.argmax(full), full.shape)
    return ON_PANELS[row // 273], row % 273, channel


def test_cli_explains_each_id_with_the_fold_that_held_it_out(trained, oof, tmp_path, capsys):
    ids = list(oof[oof.fold == 0].id[:2]) + list(oof[oof.fold == 1].id[:1])
    out = tmp_path / "explained"
    assert main(["--model", trained["run"], "--ids", ",".join(ids) + f",{ids[0]}",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(out / "gradcam.csv")
    assert f"explain: cadences from Kaggle folder {trained['data']}" in printed
    table = read_csv(str(out / "gradcam.csv"))
    assert list(table.id) == ids                      # order kept, the repeat dropped
    rows = oof.set_index("id").loc[ids]
    assert list(table.fold) == list(rows.fold)
    np.testing.assert_allclose(table.score, rows.score, atol=1e-4)   # the out-of-fold score
    assert set(table.view) == {"on"} and set(table.layer) == {"backbone"}
    assert table.drift_rate.isna().all()
    data = KaggleDataset(trained["data"], "train")
    for row in table.itertuples():
        assert row.image == f"gradcam-{row.id}.png"
        assert (out / row.image).read_bytes()[:8] == PNG
        peak = expected_peak(os.path.join(trained["run"], f"fold{row.fold}"), data.load(row.id))
        got = None if pd.isna(row.panel) else (row.panel, row.row, row.channel)
        assert got == peak


def test_fold_option_and_shard_data(trained, oof, tmp_path, capsys):
    ids = list(oof.id[:3])
    out = tmp_path / "fold1"
    assert main(["--model", trained["run"], "--fold", "1", "--ids", ",".join(ids),
                 "--data", trained["shards"], "--out", str(out)]) == 0
    assert f"explain: cadences from TFRecord shards {trained['shards']}" in capsys.readouterr().out
    table = read_csv(str(out / "gradcam.csv"))
    assert list(table.fold) == [1, 1, 1]
    own = oof.set_index("id").loc[ids]
    held_out = (own.fold == 1).to_numpy()
    np.testing.assert_allclose(table.score[held_out], own.score[held_out], atol=1e-4)
    assert main(["--model", trained["run"], "--fold", "1", "--ids", ids[0], "--data",
                 trained["data"], "--out", str(out)]) == 0
    assert f"explain: cadences from Kaggle folder {trained['data']}" in capsys.readouterr().out
    assert read_csv(str(out / "gradcam.csv")).score[0] == pytest.approx(table.score[0], abs=1e-6)


def fold_with_view(trained, tmp_path, view: dict) -> str:
    """fold0's files with another view in config.json and an untrained plain CNN for it."""
    fold_dir = copy_fold(os.path.join(trained["run"], "fold0"), str(tmp_path / "fold0"))
    config_path = os.path.join(fold_dir, "config.json")
    config = json.load(open(config_path))
    config["view"].update(view)
    json.dump(config, open(config_path, "w"))
    keras.utils.set_random_seed(0)
    net = create_model("plain_cnn_s", view_shape(_view(config["view"])))
    net.save(os.path.join(fold_dir, "model.keras"))
    return fold_dir


def _view(view: dict) -> ViewConfig:
    from tfseti.config import from_dict

    return from_dict(ViewConfig, view, "view")


@pytest.mark.parametrize("view", [
    {"name": "on_off"}, {"name": "all", "resize": [48, 16]},
    {"name": "dedoppler", "resize": None, "dedoppler": {"drifts": 9}}], ids=lambda v: v["name"])
def test_other_views_map_onto_their_panels(trained, oof, tmp_path, view):
    fold_dir = fold_with_view(trained, tmp_path, view)
    ids = list(oof[oof.fold == 0].id[:2])
    path = explain_run(fold_dir, ids, str(tmp_path / "out"), log=lambda _: None)
    table = read_csv(path)
    assert list(table.view) == [view["name"]] * 2
    for row in table.itertuples():
        assert (tmp_path / "out" / row.image).read_bytes()[:8] == PNG
        if view["name"] == "dedoppler":
            rates = drift_rates(_view(view).dedoppler)
            assert pd.isna(row.panel) and 0 <= row.row < 9
            assert row.drift_rate == pytest.approx(rates[row.row])
        elif view["name"] == "on_off":
            assert row.panel in ON_PANELS           # an ON panel wins over the OFF panel beside it
        else:
            assert 0 <= row.panel < 6 and 0 <= row.row < 273 and 0 <= row.channel < 256


def error_of(argv, capsys) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_errors(trained, oof, tmp_path, capsys):
    run, out = trained["run"], str(tmp_path / "out")
    known = oof.id[0]
    # Well-formed ids that the run does not hold (malformed ones: tests/reliability).
    assert "unknown id(s) ['fffffffffffffff']: in no out-of-fold prediction" in error_of(
        ["--model", run, "--ids", f"{known},fffffffffffffff", "--out", out], capsys)
    assert "1 of 1 cadence(s) not found in the run's data: ['abc123abc123abc']" in error_of(
        ["--model", run, "--fold", "0", "--ids", "abc123abc123abc", "--out", out], capsys)
    assert "--fold 5: " in error_of(
        ["--model", run, "--fold", "5", "--ids", known, "--out", out], capsys)
    assert "expected one or more comma-separated cadence ids" in error_of(
        ["--model", run, "--ids", " , ", "--out", out], capsys)
    assert "no such folder" in error_of(
        ["--model", run, "--ids", known, "--data", str(tmp_path / "nowhere"), "--out", out], capsys)
    without = copy_fold(os.path.join(run, "fold0"), str(tmp_path / "no_network" / "fold0"))
    message = error_of(["--model", os.path.dirname(without), "--ids", known, "--out", out], capsys)
    assert "no .keras network to explain" in message and "['fold0'] have no model.keras" in message
    assert "no such run folder" in error_of(
        ["--model", str(tmp_path / "missing"), "--ids", known, "--out", out], capsys)
    assert not os.path.exists(out)
    shutil.rmtree(tmp_path / "no_network")

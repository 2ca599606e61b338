"""``tfseti.predict``: SavedModels in, one Kaggle submission out; flip TTA as in training; ensembles."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from scipy.stats import rankdata
from harness import write_kaggle_dir, write_shard_manifest

from tfseti import predict as pr
from tfseti.data.augment_ops import horizontal_flip, vertical_flip
from tfseti.data.config import ViewConfig
from tfseti.data.views import make_view
from tfseti.io.kaggle import ON_PANELS, KaggleDataset
from tfseti.io.records import encode_example
from tfseti.train.export import export_saved_model

N_TEST = 5
VIEWS = {"on": ViewConfig("on", resize=(24, 16)),
         "on_off": ViewConfig("on_off", resize=(24, 16), background="off_median"),
         "all": ViewConfig("all", resize=(24, 16))}


def tiny_net(view: ViewConfig, panels: int, seed: int, symmetric: bool = False) -> keras.Model:
    """A small asymmetric conv net (or, ``symmetric``, global mean -> dense: flip-invariant)."""
    keras.utils.set_random_seed(seed)
    from tfseti.data.views import view_shape

    inputs = keras.Input(view_shape(view, panels))
    x = inputs
    if not symmetric:
        x = keras.layers.Conv2D(3, 3, padding="same", activation="relu")(x)
        x = keras.layers.Flatten()(x)
    else:
        x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, kernel_initializer=keras.initializers.RandomNormal(0, 0.5, seed))(x)
    return keras.Model(inputs, outputs)


def export(folder, view_name: str, seed: int, panels: int = 6, symmetric=False, with_config=True):
    """A trainer-like fold folder: ``config.json`` (view) next to ``saved_model/``."""
    view = VIEWS[view_name]
    net = tiny_net(view, panels, seed, symmetric)
    os.makedirs(folder, exist_ok=True)
    if with_config:
        with open(os.path.join(folder, "config.json"), "w") as handle:
            json.dump({"view": {"name": view.name, "background": view.background,
                                "normalize_columns": view.normalize_columns}}, handle)
    path = export_saved_model(net, view, os.path.join(folder, "saved_model"), (panels, 273, 256))
    return path, net, view


def direct(net, view, cadence, flips=((),)):
    """The network's probability on the view image, averaged over image flips (axes of (B,H,W,C))."""
    image = make_view(tf.constant(cadence, tf.float16), view)
    outs = [tf.sigmoid(net(tf.reverse(image, list(axes)) if axes else image)[:, 0]).numpy()
            for axes in flips]
    return np.mean(outs, axis=0)


def write_shards(folder, ids, cadences, n_shards=2, duplicate=False, manifest=True):
    os.makedirs(folder, exist_ok=True)
    order = np.random.default_rng(1).permutation(len(ids))
    for shard in range(n_shards):
        path = os.path.join(folder, f"test-{shard:05d}-of-{n_shards:05d}.tfrec")
        with tf.io.TFRecordWriter(path) as writer:
            for k in order[shard::n_shards]:
                writer.write(encode_example(ids[k], cadences[k]))
            if duplicate and shard == 0:
                writer.write(encode_example(ids[order[0]], cadences[order[0]]))
    if manifest:
        write_shard_manifest(folder)
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    kaggle = root / "kaggle"
    frames = write_kaggle_dir(kaggle, n_train=2, n_test=N_TEST, seed=3)
    ids = list(frames["test"]["id"])
    # csv order differs from sorted order, so "csv order" is really tested
    ids = ids[::-1]
    pd.DataFrame({"id": ids, "target": 0.5}).to_csv(kaggle / "sample_submission.csv", index=False)
    dataset = KaggleDataset(str(kaggle), "test")
    cadences = np.stack([dataset.load(i) for i in ids])
    models = {name: export(root / "run" / f"fold{k}", name, seed=k)
              for k, name in enumerate(["on", "on_off"])}
    return {"root": root, "kaggle": str(kaggle), "ids": ids, "cadences": cadences,
            "shards": write_shards(root / "shards", ids, cadences), "models": models}


def test_kaggle_folder_ids_in_csv_order_and_direct_outputs(setup):
    path, net, view = setup["models"]["on"]
    model = pr.load_model(path)
    assert (model.panels, model.view["name"]) == (6, "on")
    result = pr.predict([model], pr.open_test_data(setup["kaggle"]), batch_size=2)
    assert result.ids == setup["ids"]
    np.testing.assert_allclose(result.target, direct(net, view, setup["cadences"]), rtol=1e-5,
                               atol=1e-6)


def test_shards_give_the_kaggle_predictions(setup):
    model = pr.load_model(setup["models"]["on_off"][0])
    from_kaggle = pr.predict([model], pr.open_test_data(setup["kaggle"]), batch_size=3)
    for data in (str(setup["shards"]), str(setup["shards"] / "test-*.tfrec")):
        from_shards = pr.predict([model], pr.open_test_data(data), batch_size=3)
        assert sorted(from_shards.ids) == sorted(setup["ids"])
        got = dict(zip(from_shards.ids, from_shards.target))
        np.testing.assert_allclose([got[i] for i in from_kaggle.ids], from_kaggle.target, rtol=1e-6)


@pytest.mark.parametrize("name", ["on", "on_off", "all"])
def test_raw_cadence_flips_are_the_training_image_flips(setup, name):
    """The raw-cadence time/frequency flips give exactly the training vflip/hflip of the view."""
    view = VIEWS[name]
    model = pr.ServingModel("m", 6, (6, 273, 256), {"name": name, "background": view.background},
                            None)
    cadence = setup["cadences"][:2]
    _, time_flip, freq_flip, both = pr.flip_variants(cadence, model, "flips")
    image = make_view(tf.constant(cadence), view)
    seed = tf.constant([1, 2], tf.int32)
    vflipped, _ = vertical_flip(image, seed, 1.0)
    hflipped, _ = horizontal_flip(image, seed, 1.0)
    for raw, expected in ((time_flip, vflipped), (freq_flip, hflipped),
                          (both, horizontal_flip(vflipped, seed, 1.0)[0])):
        np.testing.assert_allclose(make_view(tf.constant(raw), view).numpy(), expected.numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_flips_tta_is_the_mean_of_the_four_flipped_predictions(setup, tmp_path):
    data = pr.open_test_data(setup["kaggle"])
    for name in ("on", "on_off"):
        path, net, view = setup["models"][name]
        result = pr.predict([pr.load_model(path)], data, tta="flips", batch_size=4)
        expected = direct(net, view, setup["cadences"], flips=((), (1,), (2,), (1, 2)))
        np.testing.assert_allclose(result.target, expected, rtol=1e-5, atol=1e-6)
        assert not np.allclose(result.target, direct(net, view, setup["cadences"]), atol=1e-4)
    # A flip-invariant network: TTA changes nothing (a wrong panel order would show here: the
    # reversed ABACAD puts the OFF panels where the ON view reads).
    path, net, view = export(tmp_path / "sym", "on", seed=5, symmetric=True)
    model = pr.load_model(path)
    np.testing.assert_allclose(pr.predict([model], data, tta="flips").target,
                               pr.predict([model], data, tta="none").target, rtol=1e-5)


def test_rank_and_mean_ensembles(setup):
    paths = [setup["models"][n][0] for n in ("on", "on_off")]
    models = [pr.load_model(p) for p in paths]
    data = pr.open_test_data(setup["kaggle"])
    singles = np.stack([pr.predict([m], data).target for m in models])
    ranked = pr.predict(models, data, ensemble_method="rank")
    n = len(setup["ids"])
    expected = np.mean([(rankdata(p) - 1) / (n - 1) for p in singles], axis=0)
    np.testing.assert_allclose(ranked.target, expected, rtol=1e-6)
    assert ranked.target.min() >= 0 and ranked.target.max() <= 1
    np.testing.assert_allclose(pr.predict(models, data, ensemble_method="mean").target,
                               singles.mean(axis=0), rtol=1e-6)
    assert pr.resolve_model_paths(str(setup["root"] / "run")) == [
        str(setup["root"] / "run" / f"fold{k}" / "saved_model") for k in (0, 1)]


def test_panels_are_fitted_or_refused(setup, tmp_path):
    path, net, view = export(tmp_path / "on3", "on", seed=7, panels=3)
    model = pr.load_model(path)
    assert model.panels == 3
    result = pr.predict([model], pr.open_test_data(setup["kaggle"]), tta="flips")
    on_only = setup["cadences"][:, list(ON_PANELS)]
    np.testing.assert_allclose(
        result.target, direct(net, view, on_only, flips=((), (1,), (2,), (1, 2))), rtol=1e-5,
        atol=1e-6)
    # 3-panel shards cannot feed a 6-panel model.
    shards = write_shards(tmp_path / "on_shards", setup["ids"], on_only, n_shards=1)
    six = pr.load_model(setup["models"]["on"][0])
    with pytest.raises(ValueError, match="takes 6-panel cadences but the data holds 3 panels"):
        pr.predict([six], pr.open_test_data(str(shards)))


def test_missing_and_duplicated_ids_are_errors(setup, tmp_path):
    model = pr.load_model(setup["models"]["on"][0])
    duplicated = write_shards(tmp_path / "dup", setup["ids"], setup["cadences"], duplicate=True)
    with pytest.raises(ValueError, match="predicted more than once"):
        pr.predict([model], pr.open_test_data(str(duplicated)))
    kaggle = tmp_path / "kaggle"
    frames = write_kaggle_dir(kaggle, n_train=1, n_test=3, seed=9)
    gone = frames["test"]["id"][1]
    os.remove(KaggleDataset(str(kaggle), "test").path(gone))
    with pytest.raises(FileNotFoundError, match=f"1 id\\(s\\) of .*sample_submission.csv have no .npy"):
        pr.open_test_data(str(kaggle))
    with open(tmp_path / "dup" / "manifest.json", "w") as handle:
        json.dump({"shards": [{"name": "test-00000-of-00002.tfrec", "records": 1}]}, handle)
    with pytest.raises(ValueError, match="dup: manifest format is None"):
        pr.open_test_data(str(tmp_path / "dup"))
    with pytest.raises(FileNotFoundError, match="neither a SavedModel"):
        pr.resolve_model_paths(str(tmp_path))
    with pytest.raises(ValueError, match="1 id\\(s\\) missing"):
        pr.check_ids(setup["ids"][:-1], setup["ids"], None)
    with pytest.raises(ValueError, match="the shards hold 6 records"):
        pr.check_ids(setup["ids"], None, 6)
    no_exact_flip = pr.ServingModel("m", 6, (6, 273, 256), {"name": "all", "background": "off_median"},
                                    None)
    with pytest.raises(ValueError, match="no flip of the raw cadences equals"):
        pr.flip_variants(setup["cadences"], no_exact_flip, "flips")


def test_cli_writes_a_submission(setup, tmp_path):
    out = tmp_path / "sub" / "submission.csv"
    run = subprocess.run(
        [sys.executable, "-m", "tfseti.predict", "--model", str(setup["root"] / "run"),
         "--data", setup["kaggle"], "--tta", "flips", "--ensemble", "rank", "--out", str(out),
         "--batch-size", "2"], capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert run.returncode == 0, run.stderr
    # Not a terminal: no progress bar; and none of TensorFlow's C++ start-up lines (absl
    # banner, oneDNN, cuda drivers, cuInit), whatever TF_CPP_MIN_LOG_LEVEL the tests set.
    assert run.stderr == "", run.stderr
    assert f"submission: {out}" in run.stdout and f"{N_TEST} ids" in run.stdout
    frame = pd.read_csv(out, dtype={"id": str})
    assert list(frame.columns) == ["id", "target"]
    assert list(frame["id"]) == setup["ids"]
    models = [pr.load_model(setup["models"][n][0]) for n in ("on", "on_off")]
    expected = pr.predict(models, pr.open_test_data(setup["kaggle"]), "flips", "rank")
    np.testing.assert_allclose(frame["target"], expected.target, rtol=1e-6)


def _cli(setup, data, out, capsys) -> tuple[int, str, str]:
    code = pr.main(["--model", setup["models"]["on"][0], "--data", str(data), "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    (line,) = [line for line in lines if line.startswith("error: ")]
    return line


def test_an_incomplete_shard_folder_writes_no_submission(setup, tmp_path, capsys):
    """A deleted shard or an interrupted conversion used to give a submission missing ids."""
    folder = write_shards(tmp_path / "shards", setup["ids"], setup["cadences"], n_shards=3)
    victim = "test-00001-of-00003.tfrec"
    os.remove(folder / victim)
    out = tmp_path / "sub.csv"
    code, _, err = _cli(setup, folder, out, capsys)
    assert code == 2 and not out.exists()
    line = _one_error_line(err)
    assert f"{victim}: missing" in line and "does not match its manifest.json" in line

    os.rename(folder / "manifest.json", folder / "_progress.json")  # an interrupted conversion
    code, _, err = _cli(setup, folder, out, capsys)
    assert code == 2 and not out.exists()
    line = _one_error_line(err)
    assert "conversion interrupted" in line and "rerun the same" in line


def test_an_explicit_glob_is_read_and_its_count_printed(setup, tmp_path, capsys):
    folder = write_shards(tmp_path / "loose", setup["ids"], setup["cadences"], n_shards=2,
                          manifest=False)
    out = tmp_path / "sub.csv"
    code, stdout, err = _cli(setup, folder, out, capsys)
    assert code == 2 and "not a shard folder (no manifest.json)" in _one_error_line(err)
    code, stdout, _ = _cli(setup, folder / "test-*.tfrec", out, capsys)
    assert code == 0
    assert f"2 shard(s) matching {folder / 'test-*.tfrec'}: {N_TEST} records (counted" in stdout
    assert sorted(pd.read_csv(out, dtype={"id": str})["id"]) == sorted(setup["ids"])


def test_a_corrupt_shard_is_one_line_naming_it(setup, tmp_path, capsys):
    folder = write_shards(tmp_path / "corrupt", setup["ids"], setup["cadences"], n_shards=2)
    victim = folder / "test-00001-of-00002.tfrec"
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # same size: the folder check passes, the record's CRC does not
    victim.write_bytes(bytes(raw))
    out = tmp_path / "sub.csv"
    code, _, err = _cli(setup, folder, out, capsys)
    assert code == 2 and not out.exists()
    line = _one_error_line(err)
    assert line.startswith(f"error: {victim}: corrupt shard, corrupted record at byte "), line


def test_cli_reports_errors_with_exit_code_2(setup, tmp_path, capsys):
    assert pr.main(["--model", str(tmp_path), "--data", setup["kaggle"]]) == 2
    assert "neither a SavedModel" in capsys.readouterr().err


def test_predict_needs_neither_the_trainer_nor_the_converter():
    import ast
    import glob

    imported = set()
    for path in glob.glob(os.path.join(os.path.dirname(pr.__file__), "*.py")):  # the package
        tree = ast.parse(open(path).read())
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported & {"tfseti.io.kaggle", "tfseti.data.pipeline"}
    assert not [m for m in imported if m.startswith(("tfseti.train", "tfrecords_tools"))]

"""A trained run folder gets a calibrator and prediction applies it: the shared tiny 2-fold run of
the report tests (trained once per session through ``python -m tfseti.train``), never a new
training here."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from report.report_helpers import shared_tiny_run
from tfseti import calibrate
from tfseti import predict as pr
from tfseti.calibrate import CalibrationError
from tfseti.train.calibration import calibrate_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, worker_id):
    return shared_tiny_run(tmp_path_factory, worker_id)


def strict_json(path):
    def refuse(name):
        raise AssertionError(f"{path}: non-strict JSON constant {name}")
    with open(path) as handle:
        return json.load(handle, parse_constant=refuse)


def copy_run(run: str, dest) -> str:
    dest = str(dest)
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("backup", "report", "tensorboard",
                                                             "*.weights.h5", "model.keras"))
    return dest


def noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 6, 273, 256)).astype(np.float16)


def run_calibrators(run: str) -> dict:
    return calibrate.calibrators(strict_json(os.path.join(run, "calibration.json")))


def test_training_wrote_the_calibrators_from_the_out_of_fold_rows(trained):
    run = trained["run"]
    doc = strict_json(os.path.join(run, "calibration.json"))
    assert doc["format"] == "tfseti-calibration" and doc["ece_bins"] == 15
    assert set(doc["modes"]) == {"none", "flips"}
    oof = pd.read_csv(os.path.join(run, "oof.csv"), dtype={"id": str})
    flips = pd.concat([pd.read_csv(os.path.join(run, f"fold{k}", "oof_flips.csv"), dtype={"id": str})
                       for k in (0, 1)])
    assert sorted(flips.id) == sorted(oof.id)
    assert (flips.set_index("id").target == oof.set_index("id").target.loc[flips.id]).all()
    for mode, table in (("none", oof), ("flips", flips)):
        item = doc["modes"][mode]
        assert item["method"] in ("temperature", "platt")
        assert item["data"]["rows"] == len(table) == 16
        assert item["data"]["positives"] == int(table.target.sum())
        assert item["data"]["folds"] == [0, 1] and item["data"]["tta"] == mode
        assert item["cross_fitted"]["scheme"] == "leave one fold out over folds [0, 1]"
        # The same fit as tfseti.calibrate on those rows.
        again = calibrate.fit(table.score, table.target, groups=table.fold)
        assert item["slope"] == pytest.approx(again.calibrator.slope)
        assert item["intercept"] == pytest.approx(again.calibrator.intercept)
        assert item["before"]["ece"] == pytest.approx(again.before["ece"])
        assert item["after"]["log_loss"] == pytest.approx(again.after["log_loss"])


def test_the_flip_scores_are_the_fold_models_flip_tta_on_its_validation_shards(trained):
    from tfseti.io.shards import open_shard_folder

    run, fold = trained["run"], 1
    model = pr.load_model(os.path.join(run, f"fold{fold}", "saved_model"), calibrated=False)
    folder = open_shard_folder(trained["shards"])
    files = folder.files("val", fold)
    result = pr.predict([model], pr.open_test_data(os.path.join(trained["shards"], "train-f1-*")),
                        tta="flips")
    assert len(files) and len(result.ids) == folder.records_in(files)
    cached = pd.read_csv(os.path.join(run, f"fold{fold}", "oof_flips.csv"), dtype={"id": str})
    got = dict(zip(result.ids, calibrate.logit(result.target)))
    np.testing.assert_allclose(cached.score, [got[i] for i in cached.id], rtol=1e-6, atol=1e-6)


def test_loaded_models_predict_calibrated_probabilities_and_keep_the_raw_ones(trained):
    run = trained["run"]
    found = run_calibrators(run)
    path = os.path.join(run, "fold0", "saved_model")
    model, raw_model = pr.load_model(path), pr.load_model(path, calibrated=False)
    assert model.calibrators == found and raw_model.calibrators == {}
    assert model.calibration == os.path.join(run, "calibration.json")
    assert "calibrated (--tta flips: " in model.describe()
    assert "raw probabilities (no calibration.json)" in raw_model.describe()
    cadence = noise(4)
    raw = model.raw(cadence)
    np.testing.assert_array_equal(raw_model(cadence), raw)
    np.testing.assert_allclose(model(cadence), found["none"](raw), rtol=1e-6)
    # Flip TTA: the mean of the 4 passes' probabilities, then the flips calibrator.
    passes = [model.raw(np.ascontiguousarray(v)) for v in pr.flip_variants(cadence, model, "flips")]
    got = pr.predict_batch([model, raw_model], cadence, "flips")
    np.testing.assert_allclose(got[0], found["flips"](np.mean(passes, axis=0)), rtol=1e-6)
    np.testing.assert_allclose(got[1], np.mean(passes, axis=0), rtol=1e-6)
    # Random TTA has no calibrator of its own: the raw mean.
    random = pr.RandomTta([model, raw_model], 2, seed=3).predict_batch([model, raw_model], cadence)
    np.testing.assert_array_equal(random[0], random[1])
    # A run folder given to resolve_model_paths: every fold calibrated by the one run file.
    models = [pr.load_model(p) for p in pr.resolve_model_paths(run)]
    assert [m.calibrators for m in models] == [found, found]


def test_stacking_features_are_calibrated_like_the_models(trained):
    from tfseti.predict.stacking import LOGIT_CLIP

    run = trained["run"]
    oof = pd.read_csv(os.path.join(run, "oof.csv"), dtype={"id": str}).sort_values("id")
    none = run_calibrators(run)["none"]
    features = pr.read_oof_features([run]).features[:, 0]
    np.testing.assert_allclose(features, np.clip(none.calibrated_logit(oof.score.to_numpy()),
                                                 -LOGIT_CLIP, LOGIT_CLIP))


def test_a_run_without_a_calibrator_predicts_raw_and_a_stale_one_is_refused(trained, tmp_path):
    run = copy_run(trained["run"], tmp_path / "run")
    os.remove(os.path.join(run, "calibration.json"))
    model = pr.load_model(os.path.join(run, "fold1", "saved_model"))
    assert model.calibrators == {} and model.tag() == "raw"
    cadence = noise(2)
    np.testing.assert_array_equal(model(cadence), model.raw(cadence))
    # Refit from the folds' oof.csv and the cached oof_flips.csv: the file the training wrote.
    doc = calibrate_run(run, log=lambda _: None)
    assert doc == strict_json(os.path.join(trained["run"], "calibration.json"))
    # Fitted without fold 1's rows: stale, refused for fold 1 (and for stacking).
    doc["modes"]["none"]["data"]["folds"] = [0]
    with open(os.path.join(run, "calibration.json"), "w") as handle:
        json.dump(doc, handle)
    with pytest.raises(CalibrationError, match=r"its none calibrator was fitted on the out-of-fold "
                                               r"rows of folds \[0\], not fold 1's .* stale"):
        pr.load_model(os.path.join(run, "fold1", "saved_model"))
    assert pr.load_model(os.path.join(run, "fold0", "saved_model")).calibrators
    with pytest.raises(CalibrationError, match="stale"):
        pr.read_oof_features([run])


def test_one_class_rows_get_no_calibrator_and_a_stale_one_goes(trained, tmp_path):
    run = copy_run(trained["run"], tmp_path / "run")
    for fold in (0, 1):
        path = os.path.join(run, f"fold{fold}", "oof.csv")
        pd.read_csv(path, dtype={"id": str}).assign(target=0).to_csv(path, index=False)
    lines = []
    assert calibrate_run(run, log=lines.append) is None
    assert not os.path.exists(os.path.join(run, "calibration.json"))
    assert lines == [f"calibration: none (the 16 out-of-fold rows are all of class 0); removed "
                     f"the stale {os.path.join(run, 'calibration.json')}"]

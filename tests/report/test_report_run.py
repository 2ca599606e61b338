"""``tfseti.report`` on a real run folder of ``python -m tfseti.train --fold all`` (2 folds of
synthetic data with a truth.csv): every number on the page is checked against the run's files,
the page is looked at in headless Chromium, and the URL, single-fold and one-class cases."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import fsspec
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tfseti.report import write_report
from tfseti.report.__main__ import main

from report_helpers import (copy_fold, gradcam_figures, headless_chromium, metric_values, served,
                            shared_tiny_run, table_rows, waterfall_ids)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTIONS = ["Summary", "Training curves", "ROC", "Calibration", "AUC by needle family and SNR",
            "Model against the classical search", "Waterfalls", "Grad-CAM", "Config"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, worker_id):
    return shared_tiny_run(tmp_path_factory, worker_id)


@pytest.fixture(scope="module")
def report(trained, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("report") / "report")
    lines = []
    index = write_report(trained["run"], out=out, log=lines.append)
    with open(index, encoding="utf-8") as handle:
        return {"index": index, "out": out, "html": handle.read(), "log": lines}


def test_summary_matches_the_run_files(trained, report):
    html, run = report["html"], trained["run"]
    oof = pd.read_csv(os.path.join(run, "oof.csv"), dtype={"id": str})
    assert metric_values(html, "oof-auc") == [pytest.approx(roc_auc_score(oof.target, oof.score))]
    with open(os.path.join(run, "cv.json")) as handle:
        assert metric_values(html, "cv-json-auc") == [pytest.approx(json.load(handle)["cv_auc"])]
    best, fold_aucs = [], []
    for fold in (0, 1):
        with open(os.path.join(run, f"fold{fold}", "result.json")) as handle:
            best.append(json.load(handle)["best_val_auc"])
        rows = oof[oof.fold == fold]
        fold_aucs.append(roc_auc_score(rows.target, rows.score))
    assert metric_values(html, "best-val-auc") == pytest.approx(best)
    assert "AUC is undefined for fold(s)" not in html  # both folds hold both classes
    assert metric_values(html, "fold-oof-auc") == pytest.approx(fold_aucs)
    assert [line.split(":")[0] for line in report["log"]] == ["report"] * len(report["log"])
    assert report["log"][-1] == f"report: wrote {report['index']}"
    assert "&quot;name&quot;: &quot;cpu_demo&quot;" in html  # the config, HTML-escaped JSON
    assert "Other folds differ in: train.fold." in html
    assert "http" not in html.split("</style>")[0].split("<style>")[1]


def test_calibration_section_matches_the_run_calibrators(trained, report):
    """--tta none: raw and calibrated ECE / log-loss recomputed from oof.csv and
    calibration.json; cross-fitted and --tta flips as the file states them; the diagram drawn."""
    from tfseti import calibrate

    html, run = report["html"], trained["run"]
    oof = pd.read_csv(os.path.join(run, "oof.csv"), dtype={"id": str})
    with open(os.path.join(run, "calibration.json")) as handle:
        doc = json.load(handle)
    found = calibrate.calibrators(doc)
    raw = calibrate.sigmoid(np.clip(oof.score, -16, 16))
    fitted = found["none"].from_logits(oof.score.to_numpy())
    none, flips = doc["modes"]["none"], doc["modes"]["flips"]
    assert metric_values(html, "ece-none-raw") == [pytest.approx(calibrate.ece(oof.target, raw))]
    assert metric_values(html, "ece-none-raw") == [pytest.approx(none["before"]["ece"])]
    assert metric_values(html, "ece-none-calibrated") == [
        pytest.approx(calibrate.ece(oof.target, fitted))]
    assert metric_values(html, "ece-none-calibrated") == [pytest.approx(none["after"]["ece"])]
    assert metric_values(html, "log-loss-none-calibrated") == [pytest.approx(none["after"]["log_loss"])]
    assert metric_values(html, "ece-none-cross-fitted") == [pytest.approx(none["cross_fitted"]["ece"])]
    for kind, key in (("raw", "before"), ("calibrated", "after"), ("cross-fitted", "cross_fitted")):
        assert metric_values(html, f"ece-flips-{kind}") == [pytest.approx(flips[key]["ece"])]
    assert "15 equal-width probability bins" in html
    assert found["none"].describe() in html and found["flips"].describe() in html
    with open(os.path.join(report["out"], "reliability.png"), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_classical_section_scores_the_out_of_fold_cadences(trained, report):
    from tfseti.data.config import DedopplerConfig
    from tfseti.dedoppler.window_scores import score_batch
    from tfseti.io.cadence_sources import from_shards

    oof = pd.read_csv(os.path.join(trained["run"], "oof.csv"), dtype={"id": str})
    truth = pd.read_csv(trained["truth"], dtype={"id": str})
    with open(os.path.join(trained["run"], "fold0", "config.json")) as handle:
        shards = json.load(handle)["data"]["data"]
    cadences = from_shards(shards, list(oof.id))
    classical = score_batch(np.stack([cadences[i] for i in oof.id]), DedopplerConfig()).scores["two_of_three"]
    rows = table_rows(report["html"], "group")
    assert rows["all"][3] == f"{roc_auc_score(oof.target, oof.score):.4f}"
    assert rows["all"][4] == f"{roc_auc_score(oof.target, classical):.4f}"
    joined = oof.assign(classical=classical).merge(truth[["id", "family"]], on="id")
    negatives = joined[joined.target == 0]
    for family in joined.loc[joined.target == 1, "family"].unique():
        pos = joined[(joined.target == 1) & (joined.family == family)]
        expected = roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(negatives))],
                                 np.r_[pos.classical, negatives.classical])
        assert rows[f"family {family}"][4] == f"{expected:.4f}"
    assert os.path.exists(os.path.join(report["out"], "roc-classical.png"))


def test_family_and_snr_tables_score_each_group_against_all_negatives(trained, report):
    oof = pd.read_csv(os.path.join(trained["run"], "oof.csv"), dtype={"id": str})
    truth = pd.read_csv(trained["truth"], dtype={"id": str})
    joined = oof.merge(truth[["id", "family", "snr"]], on="id")
    positives, negatives = joined[joined.target == 1], joined[joined.target == 0]
    rows = table_rows(report["html"], "family")
    assert sorted(rows) == sorted(positives.family.unique())
    for family, cells in rows.items():
        scores = positives.loc[positives.family == family, "score"]
        expected = roc_auc_score(np.r_[np.ones(len(scores)), np.zeros(len(negatives))],
                                 np.r_[scores, negatives.score])
        assert cells[:3] == [family, str(len(scores)), str(len(negatives))]
        assert cells[3] == f"{expected:.4f}"
    snr_rows = table_rows(report["html"], "snr-bin")
    assert sum(int(cells[1]) for cells in snr_rows.values()) == len(positives)
    # Bins cover the positives' SNR range, closed at both ends.
    first, last = list(snr_rows)[0], list(snr_rows)[-1]
    assert float(first[1:].split(",")[0]) <= positives.snr.min()
    assert float(last.split(",")[1].rstrip("]")) >= positives.snr.max()


def test_waterfalls_show_the_top_and_bottom_scored_cadences(trained, report):
    oof = pd.read_csv(os.path.join(trained["run"], "oof.csv"), dtype={"id": str})
    pos = oof[oof.target == 1].sort_values("score")
    neg = oof[oof.target == 0].sort_values("score")
    expected = {"tp": list(pos.id[::-1][:3]), "fp": list(neg.id[::-1][:3]),
                "missed": list(pos.id[:3])}
    pngs = sorted(name for name in os.listdir(report["out"]) if name.startswith("waterfall-"))
    assert len(pngs) == 9
    for kind, ids in expected.items():
        assert waterfall_ids(report["html"], kind) == ids
        for rank, cadence_id in enumerate(ids, 1):
            name = f"waterfall-{kind}-{rank}-{cadence_id}.png"
            assert name in pngs and f'src="{name}"' in report["html"]
            with open(os.path.join(report["out"], name), "rb") as handle:
                assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    truth = pd.read_csv(trained["truth"], dtype={"id": str}).set_index("id")
    top = expected["tp"][0]
    assert f"{truth.family[top]} · SNR {truth.snr[top]:.1f}" in report["html"]
    assert "Cadences from Kaggle folder " + trained["data"] in report["html"]


def test_gradcam_explains_the_first_two_examples_of_each_kind(trained, report, tmp_path):
    from tfseti.explain.run import explain_run

    oof = pd.read_csv(os.path.join(trained["run"], "oof.csv"), dtype={"id": str})
    pos = oof[oof.target == 1].sort_values("score")
    neg = oof[oof.target == 0].sort_values("score")
    expected = {"tp": list(pos.id[::-1][:2]), "fp": list(neg.id[::-1][:2]),
                "missed": list(pos.id[:2])}
    pngs = sorted(name for name in os.listdir(report["out"]) if name.startswith("gradcam-"))
    assert len(pngs) == 6
    shown = {kind: gradcam_figures(report["html"], kind) for kind in expected}
    for kind, ids in expected.items():
        assert [cadence_id for cadence_id, _ in shown[kind]] == ids
        for rank, cadence_id in enumerate(ids, 1):
            name = f"gradcam-{kind}-{rank}-{cadence_id}.png"
            assert name in pngs and f'src="{name}"' in report["html"]
            with open(os.path.join(report["out"], name), "rb") as handle:
                assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    # The same heat as python -m tfseti.explain gives for those ids (their out-of-fold networks).
    ids = list(dict.fromkeys(i for ids in expected.values() for i in ids))
    table = pd.read_csv(explain_run(trained["run"], ids, str(tmp_path / "explain"),
                                    log=lambda _: None), dtype={"id": str}, keep_default_na=False)
    peaks = {row.id: f"{row.panel},{row.row},{row.channel}" if row.row != "" else "none"
             for row in table.itertuples()}
    for kind in expected:
        for cadence_id, peak in shown[kind]:
            assert peak == peaks[cadence_id]
    assert "view on" in report["html"] and "the OFF panels have none" in report["html"]


def test_page_renders_in_headless_chromium(report, tmp_path):
    screenshot = os.environ.get("TFSETI_REPORT_SCREENSHOT") or str(tmp_path / "report.png")
    with served(report["out"]) as base, headless_chromium(str(tmp_path / "profile")) as driver:
        driver.get(f"{base}/index.html")
        headings = driver.execute_script(
            "return Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
        assert headings == SECTIONS
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete,"
            " i.naturalWidth])")
        # curves, ROC, reliability, ROC against the classical search, 9 waterfalls, 6 Grad-CAM
        # heat maps
        assert len(images) == 19
        assert len([src for src, _, _ in images if src.startswith("gradcam-")]) == 6
        assert [src for src, complete, width in images if not (complete and width > 0)] == []
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, height)
        assert driver.save_screenshot(screenshot)
    with open(screenshot, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_cli_prints_the_page_path_last_and_never_imports_the_trainer(trained, tmp_path):
    out = tmp_path / "cli_report"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tfseti.report", trained["run"], "--out",
         str(out), "--examples", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == str(out / "index.html")
    assert "report: reading the run folder" in result.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "tfseti.report.build" in imported
    assert [name for name in imported if name.startswith("tfseti.train")] == []
    assert len([n for n in os.listdir(out) if n.startswith("waterfall-")]) == 3
    assert len([n for n in os.listdir(out) if n.startswith("gradcam-")]) == 3
    assert "tfseti.explain.gradcam" in imported


def test_run_folder_and_truth_read_through_fsspec_urls(trained, tmp_path):
    fs = fsspec.filesystem("memory")
    base = "memory://report-test/run"
    for fold in (0, 1):
        for name in ("config.json", "result.json", "oof.csv", "log.csv"):
            fs.put_file(os.path.join(trained["run"], f"fold{fold}", name),
                        f"{base}/fold{fold}/{name}")
    fs.put_file(trained["truth"], "memory://report-test/truth.csv")
    try:
        assert main([base]) == 2  # a remote run has no default output folder
        index = write_report(base, out=str(tmp_path / "out"),
                             truth="memory://report-test/truth.csv", examples=1, log=lambda _: None)
    finally:
        fs.rm("memory://report-test", recursive=True)
    html = open(index, encoding="utf-8").read()
    oof = pd.read_csv(os.path.join(trained["run"], "oof.csv"), dtype={"id": str})
    # No RUN/oof.csv uploaded: the folds' own files are joined.
    assert metric_values(html, "oof-auc") == [pytest.approx(roc_auc_score(oof.target, oof.score))]
    assert metric_values(html, "cv-json-auc") == []
    assert "Truth: memory://report-test/truth.csv; 16 of 16" in html
    assert len(table_rows(html, "family")) >= 1
    assert "Unavailable: no .keras network in the run&#x27;s folds" in html  # none uploaded


def test_single_fold_without_manifest_reads_cadences_from_the_shards(trained, tmp_path):
    fold_dir = copy_fold(os.path.join(trained["run"], "fold1"), str(tmp_path / "fold1"))
    shutil.copy(os.path.join(trained["run"], "fold1", "model.keras"), fold_dir)  # for Grad-CAM
    shards = tmp_path / "shards_without_manifest"
    shards.mkdir()
    for name in os.listdir(trained["shards"]):
        if name.endswith(".tfrec"):
            shutil.copy(os.path.join(trained["shards"], name), shards)
    config_path = os.path.join(fold_dir, "config.json")
    config = json.load(open(config_path))
    config["data"]["data"] = str(shards)
    json.dump(config, open(config_path, "w"))
    index = write_report(fold_dir, examples=2, log=lambda _: None)
    assert index == os.path.join(fold_dir, "report", "index.html")
    html = open(index, encoding="utf-8").read()
    oof = pd.read_csv(os.path.join(fold_dir, "oof.csv"), dtype={"id": str})
    assert metric_values(html, "oof-auc") == [pytest.approx(roc_auc_score(oof.target, oof.score))]
    assert "Unavailable: no truth file" in html and "manifest.json: not found" in html
    assert f"Cadences from TFRecord shards {shards}" in html
    n_pos, n_neg = int(oof.target.sum()), int((oof.target == 0).sum())
    assert [len(waterfall_ids(html, k)) for k in ("tp", "fp", "missed")] == [
        min(2, n_pos), min(2, n_neg), min(2, n_pos)]
    for kind in ("tp", "fp", "missed"):  # explained from the shards' cadences, every one
        figures = gradcam_figures(html, kind)
        assert [i for i, _ in figures] == waterfall_ids(html, kind)
        assert all(peak is not None for _, peak in figures)
    assert table_rows(html, "family") == {}


def test_a_one_class_fold_says_auc_undefined(trained, tmp_path):
    fold_dir = copy_fold(os.path.join(trained["run"], "fold0"), str(tmp_path / "fold0"))
    oof = pd.read_csv(os.path.join(fold_dir, "oof.csv"), dtype={"id": str})
    oof.assign(target=0).to_csv(os.path.join(fold_dir, "oof.csv"), index=False)
    result = json.load(open(os.path.join(fold_dir, "result.json")))
    json.dump({**result, "best_val_auc": float("nan")}, open(os.path.join(fold_dir, "result.json"), "w"))
    index = write_report(fold_dir, out=str(tmp_path / "out"), examples=2, log=lambda _: None)
    html = open(index, encoding="utf-8").read()
    assert metric_values(html, "oof-auc") == [None]
    assert metric_values(html, "best-val-auc") == [None]
    assert "undefined (one class only)" in html
    assert "AUC is undefined for fold(s) 0: their validation records are all of one class" in html
    assert "fold 0: AUC undefined" not in html  # drawn into roc.png, not written in the page
    assert os.path.exists(os.path.join(tmp_path, "out", "roc.png"))
    assert waterfall_ids(html, "tp") == [] and len(waterfall_ids(html, "fp")) == 2
    assert "None in the out-of-fold set." in html

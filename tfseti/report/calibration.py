"""The report's calibration section: the run's ``calibration.json`` (``tfseti.train.calibration``),
reliability diagrams and the ECE before and after calibration, per TTA mode.

For ``--tta none`` the numbers are computed here from the report's out-of-fold rows (``oof.csv``)
and the stored calibrator (``tfseti.calibrate``): the raw probabilities ``sigmoid(score)`` and the
calibrated ones. Those rows are the ones the calibrator was fitted on, so "calibrated" is
in-sample; the cross-fitted figures (a calibrator that did not see the rows it scores) come from
the file, shown only when it was fitted on exactly the report's folds and row count. Other modes
(``flips``: each fold's SavedModel with flip TTA on its validation shards) are shown as the file
states them. For a single fold's folder (``RUN/fold<K>``) the run's file one level up applies.
"""

from __future__ import annotations

import os
import posixpath

from tfseti import calibrate
from tfseti.io import fs as fsutil
from tfseti.io.run_files import FOLD_DIR, read_json
from tfseti.report import page, plots

RELIABILITY_PNG = "reliability.png"
TITLE = "Calibration"


def find_calibration(run_path: str) -> tuple[dict | None, str | None]:
    """``(document, shown path)`` of the run's ``calibration.json`` (that of the run above a
    fold folder), or ``(None, None)``."""
    fs, inner = fsutil.url_to_fs(run_path.rstrip("/"))
    candidates = [(inner, run_path.rstrip("/"))]
    if FOLD_DIR.match(posixpath.basename(inner)):
        candidates.append((posixpath.dirname(inner), posixpath.dirname(run_path.rstrip("/"))))
    for folder, shown in candidates:
        if fs.exists(f"{folder}/{calibrate.FILE}"):
            path = fsutil.join(shown, calibrate.FILE)
            return read_json(fs, f"{folder}/{calibrate.FILE}", path), path
    return None, None


def _curve(values: dict) -> tuple[list, float | None]:
    return values.get("reliability") or [], values.get("ece")


def section(run, out: str) -> str:
    """The section's HTML; writes ``reliability.png`` into ``out``."""
    doc, shown = find_calibration(run.path)
    png = os.path.join(out, RELIABILITY_PNG)
    oof = run.oof
    target, score = oof["target"].to_numpy(), oof["score"].to_numpy()
    raw = calibrate.summary(target, calibrate.sigmoid(calibrate.checked_logits(score)))
    if doc is None:
        plots.reliability_diagram({"--tta none": {"raw": _curve(raw)}}, png, calibrate.ECE_BINS)
        return page.section("calibration", TITLE, page.unavailable(
            "No calibration.json in the run folder (trained before calibration existed, or its "
            "out-of-fold rows hold one class): predictions are the SavedModels' raw "
            "probabilities.") + _table([("none", "raw (sigmoid of oof.csv score)", "raw", raw)])
            + page.image(RELIABILITY_PNG, "reliability diagram of the raw probabilities"))
    found = calibrate.calibrators(doc, shown)
    modes = doc["modes"]
    folds = sorted(int(f) for f in oof["fold"].unique())
    notes = [f"{shown}: one calibrator per --tta mode, each chosen by the rule: "
             f"{doc.get('rule', '?')}. ECE over {calibrate.ECE_BINS} equal-width probability "
             f"bins: the row-weighted mean of |fraction of positives - mean probability| per bin. "
             f"Calibration is increasing in the score: a mode's AUC is unchanged by it."]
    rows, panels, candidate_rows = [], {}, []
    for mode, calibrator in found.items():
        item = modes[mode]
        data = item.get("data") or {}
        same_rows = data.get("rows") == len(oof) and data.get("folds") == folds
        notes.append(f"--tta {mode}: {calibrator.describe()} (slope {calibrator.slope:.6g}, "
                     f"intercept {calibrator.intercept:.6g}), fitted on {data.get('rows', '?')} "
                     f"out-of-fold rows ({data.get('positives', '?')} positive) of folds "
                     f"{data.get('folds', '?')}: {data.get('source', '?')}.")
        if mode == "none":
            before, after = raw, calibrate.summary(target, calibrator.from_logits(score))
            where = "(oof.csv)"
        else:
            before, after = item.get("before") or {}, item.get("after") or {}
            where = "(as calibration.json states)"
        crossed = item.get("cross_fitted") or {}
        mode_rows = [(mode, f"raw {where}", "raw", before),
                     (mode, "calibrated, in-sample (the fitting rows)", "calibrated", after)]
        curves = {"raw": _curve(before), "calibrated (in-sample)": _curve(after)}
        if (same_rows or mode != "none") and crossed.get("reliability"):
            mode_rows.append((mode, f"calibrated, cross-fitted ({crossed.get('scheme', '?')})",
                              "cross-fitted", crossed))
            curves["calibrated (cross-fitted)"] = _curve(crossed)
        elif mode == "none":
            notes.append(f"The none calibrator was fitted on {data.get('rows', '?')} rows of folds "
                         f"{data.get('folds', '?')}, this report shows {len(oof)} rows of folds "
                         f"{folds}: its cross-fitted figures are not shown; rerun the training "
                         f"command to refit it.")
        rows += mode_rows
        panels[f"--tta {mode}"] = curves
        for name, c in (item.get("candidates") or {}).items():
            if isinstance(c, dict):
                candidate_rows.append(page.row(
                    [page.cell(mode), page.cell(name), page.number_cell(c.get("slope"), digits=6),
                     page.number_cell(c.get("intercept"), digits=6),
                     page.number_cell(c.get("log_loss"), f"candidate-log-loss-{mode}-{name}")],
                    f' data-candidate="{page.esc(mode)}-{page.esc(name)}"'))
    plots.reliability_diagram(panels, png, calibrate.ECE_BINS)
    body = ("".join(page.note(n) for n in notes) + _table(rows)
            + page.table(["--tta", "candidate", "slope", "intercept", "log-loss (fitting rows)"],
                         candidate_rows, ' class="calibration-candidates"')
            + page.image(RELIABILITY_PNG, "reliability diagrams before and after calibration"))
    return page.section("calibration", TITLE, body)


def _table(rows: list[tuple[str, str, str, dict]]) -> str:
    """One row per (mode, probabilities): ECE, log-loss and mean probability; the cells carry
    ``data-metric="ece-<mode>-<kind>"`` and the like."""
    cells = [page.row([page.cell(mode), page.cell(label),
                       page.number_cell(values.get("ece"), f"ece-{mode}-{key}"),
                       page.number_cell(values.get("log_loss"), f"log-loss-{mode}-{key}"),
                       page.number_cell(values.get("mean_probability"),
                                        f"mean-probability-{mode}-{key}")],
                      f' data-calibration="{page.esc(mode)}-{page.esc(key)}"')
             for mode, label, key, values in rows]
    return page.table(["--tta", "probabilities", f"ECE ({calibrate.ECE_BINS} bins)", "log-loss",
                       "mean probability"], cells, ' class="calibration"')

"""``write_report``: read a run folder, draw its figures and write ``index.html`` beside them."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfseti.io import fs as fsutil
from tfseti.io.cadence_sources import DataSources, find_sources, load_cadences
from tfseti.report import calibration, page, plots
from tfseti.evaluate import fmt, fmt_interval
from tfseti.report.classical import BOOTSTRAP, CLASSICAL_SCORE, classical_scores, comparison
from tfseti.metrics import auc
from tfseti.report.metrics import breakdown, read_truth
from tfseti.report.runs import Run, RunFolderError, read_run

INDEX = "index.html"
CURVES_PNG = "curves.png"
ROC_PNG = "roc.png"
CLASSICAL_PNG = "roc-classical.png"
# Out-of-fold records above this are not re-scored by the classical search (minutes per 10,000).
CLASSICAL_MAX_RECORDS = 5000
WATERFALL_GLOB = "waterfall-*.png"
GRADCAM_GLOB = "gradcam-*.png"
# Grad-CAM heat maps per example kind: the first of the waterfalls' examples (each costs a
# forward and backward pass of a fold's network, and each fold's network is loaded once).
GRADCAM_EXAMPLES = 2
# (key, heading, which rows, order): the examples shown as waterfalls.
EXAMPLE_KINDS = (
    ("tp", "Most confident true positives", 1, False),
    ("fp", "Most confident false positives", 0, False),
    ("missed", "Most missed needles (lowest-scoring positives)", 1, True),
)


def default_out(run_dir: str) -> str:
    """``RUN_DIR/report`` for a local run; a remote run has no default (output is local)."""
    if fsutil.is_url(run_dir):
        raise RunFolderError(f"{run_dir}: a remote run folder needs a local output folder "
                             f"(--out DIR)")
    return os.path.join(run_dir, "report")


def pick_examples(oof: pd.DataFrame, n: int) -> dict[str, pd.DataFrame]:
    """The ``n`` rows of each example kind: highest-scoring positives and negatives, and the
    lowest-scoring positives; ties broken by id so the choice is reproducible."""
    picked = {}
    for key, _, target, ascending in EXAMPLE_KINDS:
        rows = oof[oof["target"] == target].sort_values("id", kind="stable")
        picked[key] = rows.sort_values("score", ascending=ascending, kind="stable").head(n)
    return picked


@dataclass
class Examples:
    """The example cadences of the waterfalls and Grad-CAM sections, picked and read once."""

    picked: dict[str, pd.DataFrame]   # kind -> rows of oof.csv (pick_examples)
    cadences: dict                    # id -> cadence (P, T, F); ids found nowhere are absent
    origin: str                       # where the cadences came from, for the page


def _examples(run: Run, sources: DataSources, n: int, log) -> Examples:
    picked = pick_examples(run.oof, n)
    ids = list(dict.fromkeys(i for rows in picked.values() for i in rows["id"]))
    log(f"report: loading {len(ids)} cadences for the waterfall and Grad-CAM plots")
    cadences, origin = load_cadences(sources, ids, log=log)
    return Examples(picked, cadences, origin)


def _probability(score: float) -> float:
    return float(1.0 / (1.0 + np.exp(-score)))


def _training_records(fold) -> str:
    """``1920 labelled + 2000 pseudo-labelled (runs/ns/pseudo0; 50% of every batch)``, from the
    fold's data.json ("" when the fold recorded no sources)."""
    sources = fold.sources
    if not sources:
        return ""
    parts = [f"{sources.get('labelled', '?')} labelled"]
    for extra in sources.get("extra") or []:
        parts.append(f"{extra.get('records', '?')} {extra.get('kind', 'extra')} ({extra.get('data')})")
    text = " + ".join(parts)
    if sources.get("extra"):
        text += f"; extra share {float(sources.get('extra_ratio') or 0):.0%} of every batch"
    return text


def _summary(run: Run) -> str:
    oof = run.oof
    oof_auc = auc(oof["target"], oof["score"])
    first = run.folds[0].result
    rows = [
        page.row([page.cell("run folder"), page.cell(run.path)]),
        page.row([page.cell("run name"), page.cell(run.config.get("name", ""))]),
        page.row([page.cell("folds"), page.cell(", ".join(str(f.fold) for f in run.folds))]),
        page.row([page.cell("out-of-fold records"),
                  page.cell(f"{len(oof)} ({int(oof['target'].sum())} positive, "
                            f"{int((oof['target'] == 0).sum())} negative)")]),
        page.row([page.cell("out-of-fold AUC" if len(run.folds) > 1 else "validation AUC "
                            "(oof.csv)"), page.auc_cell(oof_auc, "oof-auc")]),
    ]
    if "cv_auc" in run.cv:
        rows.append(page.row([page.cell("CV AUC (cv.json)"),
                              page.auc_cell(run.cv["cv_auc"], "cv-json-auc")]))
    init_from = (run.config.get("train") or {}).get("init_from")
    if init_from:
        scope = (run.config.get("train") or {}).get("init_scope", "all")
        rows.append(page.row([page.cell("initialised from"), page.cell(f"{init_from} ({scope})")]))
    rows += [page.row([page.cell("precision"), page.cell(first.get("precision", "?"))]),
             page.row([page.cell("replicas"), page.cell(first.get("replicas", "?"))])]
    overview = page.table(None, rows, ' class="summary"')
    fold_rows = []
    for fold in run.folds:
        log_epochs = "" if fold.log is None else str(len(fold.log))
        fold_rows.append(page.row([
            page.cell(fold.fold), page.cell(len(fold.oof)), page.cell(int(fold.oof["target"].sum())),
            page.auc_cell(fold.result.get("best_val_auc"), "best-val-auc"),
            page.auc_cell(auc(fold.oof["target"], fold.oof["score"]), "fold-oof-auc"),
            page.cell(log_epochs), page.cell(fold.result.get("precision", "?")),
            page.cell(fold.result.get("replicas", "?")), page.cell(_training_records(fold))],
            f' data-fold="{fold.fold}"'))
    per_fold = page.table(["fold", "validation records", "positives", "best val AUC",
                           "AUC of oof.csv (best weights)", "epochs logged", "precision",
                           "replicas", "training records by source"], fold_rows, ' class="folds"')
    one_class = [f.fold for f in run.folds if f.oof["target"].nunique() < 2]
    note = page.note(f"AUC is undefined for fold(s) {', '.join(map(str, one_class))}: their "
                     "validation records are all of one class.") if one_class else ""
    return page.section("summary", "Summary", overview + per_fold + note)


def _curves(run: Run, out: str) -> str:
    logs = {f.fold: f.log for f in run.folds if f.log is not None and len(f.log)}
    if not logs:
        return page.section("curves", "Training curves",
                            page.unavailable("No log.csv with any epoch in the run's folds."))
    plots.training_curves(logs, os.path.join(out, CURVES_PNG))
    return page.section("curves", "Training curves",
                        page.image(CURVES_PNG, "loss and validation AUC per epoch"))


def _roc(run: Run, out: str) -> str:
    plots.roc_curves(run.oof, os.path.join(out, ROC_PNG))
    return page.section("roc", "ROC", page.image(ROC_PNG, "ROC curves per fold and out of fold"))


def _breakdown(run: Run, sources: DataSources, truth: pd.DataFrame | None) -> str:
    title = "AUC by needle family and SNR"
    if truth is None:
        reason = "; ".join(sources.notes) or "no truth.csv"
        return page.section("breakdown", title, page.unavailable(
            f"Unavailable: no truth file for this run's data ({reason}). "
            f"Pass --truth PATH to name one."))
    result = breakdown(run.oof, truth)
    notes = [f"Truth: {sources.truth}; {result.matched} of {len(run.oof)} out-of-fold records "
             f"found in it. Each row: that group's positives against all out-of-fold negatives."]
    if result.unmatched:
        notes.append(f"{result.unmatched} out-of-fold records are missing from the truth file.")
    if result.label_conflicts:
        notes.append(f"{result.label_conflicts} records have another target in the truth file "
                     f"than in oof.csv (oof.csv's target is used).")
    families = page.table(["family", "positives", "negatives", "AUC"], [
        page.row([page.cell(r.family), page.cell(r.positives), page.cell(r.negatives),
                  page.auc_cell(r.auc)], f' data-family="{page.esc(r.family)}"')
        for r in result.families.itertuples()], ' class="families"')
    snr = page.table(["SNR bin", "positives", "negatives", "AUC"], [
        page.row([page.cell(r.bin), page.cell(r.positives), page.cell(r.negatives),
                  page.auc_cell(r.auc)], f' data-snr-bin="{page.esc(r.bin)}"')
        for r in result.snr_bins.itertuples()], ' class="snr"')
    return page.section("breakdown", title, "".join(page.note(n) for n in notes)
                        + "<h3>By needle family</h3>" + families
                        + "<h3>By SNR</h3>" + page.note(f"Bins: {result.snr_rule}.") + snr)


def _classical(run: Run, sources: DataSources, truth: pd.DataFrame | None, out: str, log,
               limit: int = CLASSICAL_MAX_RECORDS) -> str:
    title = "Model against the classical search"
    ids = list(run.oof["id"])
    if len(ids) > limit:
        return page.section("classical", title, page.unavailable(
            f"Skipped: {len(ids)} out-of-fold records (the classical search re-scores at most "
            f"{limit} here; run python -m tfseti.dedoppler on the data for the full set)."))
    log(f"report: scoring {len(ids)} out-of-fold cadences with the classical search")
    cadences, origin = load_cadences(sources, ids, log=log)
    missing = [i for i in ids if i not in cadences]
    six = all(c.shape[0] == 6 for c in cadences.values())
    if missing or not six:
        reason = (f"{len(missing)} of {len(ids)} out-of-fold cadences not found"
                  + (f" ({'; '.join(sources.notes)})" if sources.notes else "") if missing
                  else "the cadences hold only the ON panels; the ON/OFF search needs all six")
        return page.section("classical", title, page.unavailable(f"Unavailable: {reason}."))
    classical = run.oof.assign(score=classical_scores(cadences, ids))
    plots.roc_versus({"model (out-of-fold)": (run.oof["target"], run.oof["score"]),
                      f"classical {CLASSICAL_SCORE}": (classical["target"], classical["score"])},
                     os.path.join(out, CLASSICAL_PNG), "ROC: model and classical search")
    table = comparison(run.oof, classical, truth)
    rows = [page.row([page.cell(r.group), page.cell(r.positives), page.cell(r.negatives),
                      page.auc_cell(r.model), page.auc_cell(r.classical),
                      page.cell(fmt(r.difference, signed=True)),
                      page.cell(fmt_interval(r.interval, signed=True))],
                     f' data-group="{page.esc(r.group)}"') for r in table.itertuples()]
    note = page.note(f"The out-of-fold cadences ({origin}) scored by the classical de-Doppler "
                     f"search (python -m tfseti.dedoppler, score {CLASSICAL_SCORE}, default "
                     f"settings): the baseline a model has to beat. Each row: that group's "
                     f"positives against all negatives; the difference model - classical with "
                     f"its 95 % paired-bootstrap interval ({BOOTSTRAP} resamples, seed 0).")
    return page.section("classical", title, note + page.image(CLASSICAL_PNG, "ROC of the model "
                        "and of the classical search") + page.table(
                        ["group", "positives", "negatives", "model AUC", "classical AUC",
                         "difference", "95 % interval"], rows, ' class="classical"'))


def _caption(row, truth_rows: dict) -> str:
    text = f"{row.id} · score {row.score:.3f} (p = {_probability(row.score):.3f}) · fold {row.fold}"
    known = truth_rows.get(row.id)
    if known is not None and row.target == 1:
        text += f" · {known['family'] or 'no family'} · SNR {known['snr']:.1f}"
    return text


def _waterfalls(run: Run, sources: DataSources, truth: pd.DataFrame | None, out: str,
                examples: Examples) -> str:
    title = "Waterfalls"
    picked, cadences, origin = examples.picked, examples.cadences, examples.origin
    ids = list(dict.fromkeys(i for rows in picked.values() for i in rows["id"]))
    if ids and not cadences:
        reason = "; ".join(sources.notes) or "the ids are in neither the Kaggle folder nor the shards"
        return page.section("waterfalls", title, page.unavailable(
            f"Cadences unavailable, no waterfalls: {reason}."))
    truth_rows = {} if truth is None else truth.set_index("id")[["family", "snr"]].to_dict("index")
    parts = [page.note(f"All panels of each cadence, top to bottom in observing order; ON panels "
                       f"(0, 2, 4) framed in red. Down: time, across: frequency. Score = "
                       f"positive-class log-odds, p its probability. Cadences from {origin}.")]
    for key, heading, _, _ in EXAMPLE_KINDS:
        rows = picked[key]
        figures = []
        for rank, row in enumerate(rows.itertuples(), 1):
            caption = _caption(row, truth_rows)
            if row.id not in cadences:
                figures.append(f'<figure data-kind="{key}" data-id="{page.esc(row.id)}">'
                               f'{page.unavailable("cadence not found")}'
                               f"<figcaption>{page.esc(caption)}</figcaption></figure>")
                continue
            name = f"waterfall-{key}-{rank}-{row.id}.png"
            plots.waterfall(cadences[row.id], caption, os.path.join(out, name))
            figures.append(f'<figure class="waterfall" data-kind="{key}" '
                           f'data-id="{page.esc(row.id)}">{page.image(name, caption)}'
                           f"<figcaption>{page.esc(caption)}</figcaption></figure>")
        body = (f'<div class="figures">{"".join(figures)}</div>' if figures
                else page.note("None in the out-of-fold set."))
        parts.append(f"<h3>{page.esc(heading)}</h3>{body}")
    return page.section("waterfalls", title, "".join(parts))


def _gradcam_figure(key: str, cadence_id: str, caption: str, body: str, peak: str = "") -> str:
    """``data-peak``: ``panel,row,channel`` (panel empty on drift maps), ``none`` when the heat
    is zero everywhere; absent when there is no heat map."""
    attrs = f' data-peak="{page.esc(peak)}"' if peak else ""
    return (f'<figure class="gradcam" data-kind="{key}" data-id="{page.esc(cadence_id)}"{attrs}>'
            f"{body}<figcaption>{page.esc(caption)}</figcaption></figure>")


def _explain_fold(network, cadences: dict, log) -> tuple[dict, str]:
    """``({id: Explanation}, "")`` from one fold's network, or ``({}, why not)``: a network
    that cannot be loaded or explained costs its figures, not the report."""
    from tfseti.explain.heatmaps import explain_cadences

    if not network.has_model():
        return {}, f"fold {network.fold} has no model.keras"
    log(f"report: Grad-CAM of {len(cadences)} cadence(s) with {network.model_path}")
    try:
        net = network.load()
        return {e.id: e for e in explain_cadences(net, network, cadences)}, ""
    except Exception as err:  # noqa: BLE001  (any failure: named on the page and in the log)
        reason = f"Grad-CAM with fold {network.fold}'s network failed: {type(err).__name__}: {err}"
        log(f"report: {reason}")
        return {}, reason


def _gradcam(run: Run, sources: DataSources, truth: pd.DataFrame | None, out: str,
             examples: Examples, n: int, log) -> str:
    from tfseti.explain.heatmaps import describe_peak, draw, heat_note
    from tfseti.explain.networks import MODEL_FILE, FoldNetwork

    title = "Grad-CAM"
    picked = {key: rows.head(n) for key, rows in examples.picked.items()}
    ids = list(dict.fromkeys(i for rows in picked.values() for i in rows["id"]))
    if not ids:
        return page.section("gradcam", title, page.note(
            "No examples to explain (none in the out-of-fold set, or --examples 0)."))
    networks = {f.fold: FoldNetwork(f.fold, f.path, f.config) for f in run.folds}
    if not any(network.has_model() for network in networks.values()):
        return page.section("gradcam", title, page.unavailable(
            f"Unavailable: no .keras network in the run's folds (fold<K>/{MODEL_FILE}, written "
            f"when a fold finishes training), so there is nothing to take gradients of."))
    cadences = examples.cadences
    if not any(i in cadences for i in ids):
        reason = "; ".join(sources.notes) or "the ids are in neither the Kaggle folder nor the shards"
        return page.section("gradcam", title, page.unavailable(
            f"Cadences unavailable, no Grad-CAM: {reason}."))
    fold_of = dict(zip(run.oof["id"], run.oof["fold"].astype(int)))
    explained, failed = {}, {}
    for fold in sorted({fold_of[i] for i in ids if i in cadences}):
        chosen = {i: cadences[i] for i in ids if i in cadences and fold_of[i] == fold}
        network = networks.get(fold)
        found, reason = (_explain_fold(network, chosen, log) if network is not None
                         else ({}, f"no fold{fold} folder in the run"))
        explained.update(found)
        failed.update({i: reason for i in chosen if i not in found})
    try:
        view = next(n for n in networks.values() if n.has_model()).view
    except ValueError as err:  # ExplainError: a config.json whose view does not parse
        return page.section("gradcam", title, page.unavailable(f"Unavailable: {err}"))
    truth_rows = {} if truth is None else truth.set_index("id")[["family", "snr"]].to_dict("index")
    parts = [page.note(
        f"Grad-CAM (Selvaraju et al. 2017) of the first {n} cadence(s) of each kind above, each "
        f"with the network of the fold that held it out (fold<K>/{MODEL_FILE}), on the view it "
        f"was trained on (view {view.name}): the backbone's last feature map weighted by the "
        f"spatial mean of the score's gradient, ReLU, upsampled to the view image, peak = 1 "
        f"(circled). Shown as {heat_note(view.name)}. Cadences from {examples.origin}.")]
    for key, heading, _, _ in EXAMPLE_KINDS:
        figures = []
        for rank, row in enumerate(picked[key].itertuples(), 1):
            caption = _caption(row, truth_rows)
            if row.id not in cadences or row.id not in explained:
                why = "cadence not found" if row.id not in cadences else failed.get(row.id, "")
                figures.append(_gradcam_figure(key, row.id, caption, page.unavailable(why)))
                continue
            explanation = explained[row.id]
            caption = f"{caption} · {describe_peak(explanation)}"
            name = f"gradcam-{key}-{rank}-{row.id}.png"
            draw(explanation, cadences[row.id], networks[explanation.fold].view,
                 f"{caption}\n{heat_note(explanation.view)}", os.path.join(out, name))
            peak = explanation.heat.peak
            figures.append(_gradcam_figure(
                key, row.id, caption, page.image(name, f"Grad-CAM: {caption}"),
                "none" if peak is None else ",".join("" if v is None else str(v) for v in peak)))
        body = (f'<div class="figures">{"".join(figures)}</div>' if figures
                else page.note("None in the out-of-fold set."))
        parts.append(f"<h3>{page.esc(heading)}</h3>{body}")
    return page.section("gradcam", title, "".join(parts))


def _config(run: Run) -> str:
    first = run.folds[0].config
    differing = sorted({key for f in run.folds[1:] for key in _diff_keys(first, f.config)})
    text = f"The resolved config.json of fold {run.folds[0].fold}."
    if len(run.folds) > 1:
        text += (f" Other folds differ in: {', '.join(differing)}." if differing
                 else " The other folds' are identical.")
    return page.section("config", "Config", page.note(text) + page.config_block(first))


def _diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            keys += _diff_keys(x, y, f"{prefix}{key}.")
        elif x != y:
            keys.append(f"{prefix}{key}")
    return keys


def write_report(run_dir: str, out: str | None = None, truth: str | None = None,
                 examples: int = 3, log=print) -> str:
    """Write ``index.html`` and its PNGs for the run in ``run_dir`` (local or URL) into ``out``
    (default ``RUN_DIR/report``); ``truth`` overrides the truth.csv found through the shards'
    manifest. Returns the path of ``index.html``. Raises RunFolderError / FileNotFoundError /
    ValueError naming the file at fault."""
    if examples < 0:
        raise ValueError(f"examples (--examples): expected a count >= 0, got {examples}")
    out = out or default_out(run_dir)
    if fsutil.is_url(out):
        raise ValueError(f"{out}: the report is written locally; give a local folder")
    log(f"report: reading the run folder {run_dir}")
    run = read_run(run_dir)
    sources = find_sources(run.config, truth)
    truth_frame = None
    if sources.truth:
        log(f"report: reading the truth file {sources.truth}")
        truth_frame = read_truth(sources.truth)
    os.makedirs(out, exist_ok=True)
    for stale in [*glob.glob(os.path.join(out, WATERFALL_GLOB)),
                  *glob.glob(os.path.join(out, GRADCAM_GLOB)),
                  *(os.path.join(out, n) for n in (CURVES_PNG, ROC_PNG, CLASSICAL_PNG,
                                                   calibration.RELIABILITY_PNG))]:
        if os.path.exists(stale):
            os.remove(stale)
    chosen = _examples(run, sources, examples, log)
    log(f"report: {len(run.folds)} fold(s), {len(run.oof)} out-of-fold records; drawing "
        f"training curves, ROC and reliability")
    sections = [_summary(run), _curves(run, out), _roc(run, out), calibration.section(run, out),
                _breakdown(run, sources, truth_frame),
                _classical(run, sources, truth_frame, out, log),
                _waterfalls(run, sources, truth_frame, out, chosen),
                _gradcam(run, sources, truth_frame, out, chosen, min(examples, GRADCAM_EXAMPLES),
                         log), _config(run)]
    title = f"tfseti run report: {run.config.get('name', os.path.basename(run.path))}"
    index = os.path.join(out, INDEX)
    tmp = f"{index}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(page.document(title, sections))
    os.replace(tmp, index)
    log(f"report: wrote {index}")
    return index

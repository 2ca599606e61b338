"""``explain_run``: Grad-CAM PNGs and a peak CSV for chosen ids of a training run (what
``python -m tfseti.explain`` does)."""

from __future__ import annotations

import gc
import os

from tfseti.explain.heatmaps import describe_peak, draw, explain_cadences, heat_note, write_csv
from tfseti.explain.networks import ExplainError, find_networks, fold_folders, out_of_fold
from tfseti.io import fs as fsutil
from tfseti.io.kaggle import check_ids

CSV_NAME = "gradcam.csv"


def parse_ids(text: str) -> list[str]:
    """``"a, b,a"`` -> ``["a", "b"]`` (order kept, repeats dropped)."""
    ids = list(dict.fromkeys(part.strip() for part in str(text).split(",") if part.strip()))
    if not ids:
        raise ExplainError(f"--ids {text!r}: expected one or more comma-separated cadence ids")
    # Ids name the cadence files read under --data and the PNGs written under --out.
    return check_ids(ids, "--ids")


def assign_folds(run_dir: str, ids: list[str], networks: dict, fold: int | None) -> dict[str, int]:
    """``{id: fold whose network explains it}``: ``fold`` for all, else each id's out-of-fold
    fold (the network that never trained on it)."""
    if fold is not None:
        if fold not in networks:
            raise ExplainError(f"--fold {fold}: {run_dir} has no fold{fold}/model.keras; "
                               f"networks found for fold(s) {sorted(networks)}")
        return {i: fold for i in ids}
    oof = out_of_fold(run_dir, fold_folders(run_dir))
    where = dict(zip(oof["id"], oof["fold"].astype(int)))
    unknown = [i for i in ids if i not in where]
    if unknown:
        raise ExplainError(
            f"{len(unknown)} unknown id(s) {unknown[:5]}: in no out-of-fold prediction (oof.csv) "
            f"of {run_dir}; check the ids, or pass --fold K to explain ids from elsewhere (such "
            f"as test ids) with fold K's network")
    lacking = sorted({where[i] for i in ids if where[i] not in networks})
    if lacking:
        raise ExplainError(f"{run_dir}: fold(s) {lacking} held the ids out but have no "
                           f"model.keras; networks found for fold(s) {sorted(networks)} (pass "
                           f"--fold K to use one of those)")
    return {i: where[i] for i in ids}


def find_cadences(ids: list[str], network, data: str | None, log) -> tuple[dict, str]:
    """The cadences of ``ids``: from ``data`` (a Kaggle-layout folder, its train split then its
    test split, or a shard folder), else from the run's own data (its shards' Kaggle folder,
    then the shards, as the report finds them). ExplainError naming the ids not found."""
    from tfseti.io.cadence_sources import data_sources, find_sources, load_cadences

    if data is not None:
        try:  # a Kaggle-layout folder: its train split, then its test split; else shards
            sources = [data_sources(data, split) for split in ("train", "test")
                       if _has_split(data, split)] or [data_sources(data)]
        except FileNotFoundError as err:
            raise ExplainError(f"--data {err}") from None
        where = f"--data {data}"
    else:
        sources = [find_sources(network.config)]
        where = (f"the run's data ({'; '.join(sources[0].notes)})" if sources[0].notes
                 else "the run's data")
    found, origins = {}, []
    for source in sources:
        rest = [i for i in ids if i not in found]
        if not rest:
            break
        got, origin = load_cadences(source, rest, log=log, who="explain")
        found.update(got)
        if origin:
            origins.append(origin)
    missing = [i for i in ids if i not in found]
    if missing:
        raise ExplainError(f"{len(missing)} of {len(ids)} cadence(s) not found in {where}: "
                           f"{missing[:5]}" + ("" if data else "; pass --data DIR to name a "
                                               "Kaggle-layout or shard folder holding them"))
    return found, " and ".join(origins)


def _has_split(data: str, split: str) -> bool:
    from tfseti.io.kaggle import LABEL_FILES

    fs, inner = fsutil.url_to_fs(data.rstrip("/") or data)
    try:
        return fs.isdir(f"{inner}/{split}") or fs.exists(f"{inner}/{LABEL_FILES[split]}")
    except (OSError, ValueError):
        return False


def explain_run(run_dir: str, ids: list[str], out: str, fold: int | None = None,
                data: str | None = None, log=print) -> str:
    """Write ``gradcam-<id>.png`` for every id and ``gradcam.csv`` (see
    :data:`tfseti.explain.heatmaps.CSV_COLUMNS`) into the local folder ``out``; returns the CSV's
    path. Raises ExplainError / FileNotFoundError naming what is missing."""
    if fsutil.is_url(out):
        raise ExplainError(f"--out {out}: the PNGs and CSV are written locally; give a local "
                           f"folder")
    networks = find_networks(run_dir)
    folds = assign_folds(run_dir, ids, networks, fold)
    first = networks[folds[ids[0]]]
    log(f"explain: loading {len(ids)} cadence(s)")
    cadences, origin = find_cadences(ids, first, data, log)
    log(f"explain: cadences from {origin}")
    os.makedirs(out, exist_ok=True)
    by_id = {}
    for fold_index in sorted(set(folds.values())):
        network = networks[fold_index]
        chosen = [i for i in ids if folds[i] == fold_index]
        log(f"explain: fold {fold_index}: loading {network.model_path}; Grad-CAM of "
            f"{len(chosen)} cadence(s)")
        net = network.load()
        view = network.view
        for explanation in explain_cadences(net, network, {i: cadences[i] for i in chosen}):
            explanation.image = f"gradcam-{explanation.id}.png"
            title = (f"{explanation.id} · fold {fold_index} · score {explanation.score:.3f}\n"
                     f"Grad-CAM of {explanation.layer!r}, view {view.name} · "
                     f"{describe_peak(explanation)}\n{heat_note(view.name)}")
            draw(explanation, cadences[explanation.id], view, title,
                 os.path.join(out, explanation.image))
            by_id[explanation.id] = explanation
        del net
        gc.collect()
    path = write_csv([by_id[i] for i in ids], os.path.join(out, CSV_NAME))
    log(f"explain: wrote {len(ids)} PNG(s) and {path}")
    return path

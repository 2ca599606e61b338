"""Where a run's data came from: its shard folder (``data.data`` of the resolved config), the
Kaggle-layout folder those shards were converted from (``params.source`` of the shards'
``manifest.json``, read with ``tfseti.io.shards``) and that folder's ``truth.csv`` (written by
``tfseti.synth``). A shard folder that is not complete (``tfseti.io.shards.check_shard_folder``)
is named in the notes; the report still draws what it can."""

from __future__ import annotations

from dataclasses import dataclass, field

from tfseti.io import fs as fsutil
from tfseti.io import shards as shard_lib
from tfseti.io.kaggle import TRUTH_FILE


@dataclass
class DataSources:
    shards: str | None = None          # the shard folder the run trained on
    kaggle: str | None = None          # the Kaggle-layout folder the shards came from
    kaggle_split: str = "train"
    truth: str | None = None           # truth.csv, when there is one
    notes: list[str] = field(default_factory=list)  # why something is unavailable


def _exists(path: str) -> bool:
    try:
        fs, inner = fsutil.url_to_fs(path)
        return fs.exists(inner)
    except (OSError, ValueError):
        return False


def find_sources(config: dict, truth: str | None = None) -> DataSources:
    """The run's data sources, from its resolved ``config``; ``truth`` overrides the truth file
    (it must then exist: a path given by hand that is missing is an error, not a note)."""
    sources = DataSources()
    if truth is not None:
        if not _exists(truth):
            raise FileNotFoundError(f"{truth}: truth file not found (--truth)")
        sources.truth = truth
    shards = (config.get("data") or {}).get("data")
    if not shards:
        sources.notes.append("the run's config.json names no shard folder (data.data)")
        return sources
    sources.shards = str(shards)
    manifest_path = fsutil.join(sources.shards, shard_lib.MANIFEST_NAME)
    try:
        params = shard_lib.read_manifest(sources.shards).get("params") or {}
    except FileNotFoundError:
        sources.notes.append(f"{manifest_path}: not found, so the Kaggle folder the shards came "
                             f"from is unknown")
        return sources
    except (OSError, ValueError) as err:
        sources.notes.append(f"{manifest_path}: unreadable ({err})")
        return sources
    try:
        check = shard_lib.check_shard_folder(sources.shards)
        if not check.ok:
            sources.notes.append(f"shard folder not complete: {check.message()}")
    except (OSError, ValueError) as err:
        sources.notes.append(f"{sources.shards}: {err}")
    source = params.get("source")
    if not source:
        sources.notes.append(f"{manifest_path}: no params.source")
        return sources
    if _exists(source):
        sources.kaggle = str(source)
        sources.kaggle_split = str(params.get("split") or "train")
    else:
        sources.notes.append(f"{source}: the shards' source folder is gone")
    if sources.truth is None:
        candidate = fsutil.join(str(source), TRUTH_FILE)
        if _exists(candidate):
            sources.truth = candidate
        else:
            sources.notes.append(f"{candidate}: not found (only synthetic data has a truth file)")
    return sources

"""Where a run's cadences come from, and a few of them read by id: the one reader behind the
report's waterfalls and classical search and ``tfseti.explain``.

Sources (:func:`find_sources`): a run's shard folder (``data.data`` of the resolved config), the
Kaggle-layout folder those shards were converted from (``params.source`` of the shards'
``manifest.json``, read with :mod:`tfseti.io.shards`) and that folder's ``truth.csv`` (written by
``tfseti.synth``). A shard folder that is not complete (:func:`tfseti.io.shards.check_shard_folder`)
is named in the notes; callers still use what they can. :func:`data_sources` names a folder given
by hand (``--data``) instead.

Reading (:func:`load_cadences`): from the Kaggle-layout folder when it is there (local or URL,
read with :mod:`tfseti.io.kaggle`), else from the TFRecord shards (local, parsed with
:mod:`tfseti.io.records`): the shards of the complete folder or, when the folder does not pass
that check, whatever files are named like shards there (pictures and explanations only: nothing
is trained or scored on them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tfseti.io import fs as fsutil
from tfseti.io import shards as shard_lib
from tfseti.io.kaggle import LABEL_FILES, TRUTH_FILE, CadenceError, KaggleDataset


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


def data_sources(data: str, split: str = "train") -> DataSources:
    """A folder named by hand: a Kaggle-layout folder (``split`` read) or a shard folder (one
    holding ``manifest.json`` or files named like shards). FileNotFoundError when it is neither."""
    data = str(data).rstrip("/") or str(data)
    fs, inner = fsutil.url_to_fs(data)
    if not fs.isdir(inner):
        raise FileNotFoundError(f"{data}: no such folder, expected a Kaggle-layout folder or a "
                                f"shard folder")
    if (fs.exists(f"{inner}/{LABEL_FILES[split]}") or fs.isdir(f"{inner}/{split}")):
        return DataSources(kaggle=data, kaggle_split=split)
    if fs.exists(f"{inner}/{shard_lib.MANIFEST_NAME}") or shard_lib.list_shard_files(data):
        return DataSources(shards=data)
    raise FileNotFoundError(f"{data}: neither a Kaggle-layout folder (no {split}/ or "
                            f"{LABEL_FILES[split]}) nor a shard folder (no "
                            f"{shard_lib.MANIFEST_NAME}, no shard files)")


def from_kaggle(root: str, split: str, ids: list[str]) -> dict[str, np.ndarray]:
    dataset = KaggleDataset(root, split)
    found = {}
    for cadence_id in ids:
        try:
            found[cadence_id] = dataset.load(cadence_id, check=False)
        except CadenceError:
            continue  # looked for in the shards next
    return found


def from_shards(shards: str, ids: list[str]) -> dict[str, np.ndarray]:
    """Scan every shard of ``shards`` once, keeping the records of ``ids``."""
    import tensorflow as tf

    from tfseti.io.records import parse_example

    check = shard_lib.check_shard_folder(shards)  # NoShardsError: no such folder
    paths = check.folder.paths if check.ok else shard_lib.list_shard_files(shards)
    wanted, found = set(ids), {}
    for path in paths:
        try:
            compression = shard_lib.detect_compression(path) or ""
            for serialized in tf.data.TFRecordDataset(path, compression_type=compression):
                record = parse_example(serialized)
                cadence_id = record["id"].numpy().decode("utf-8")
                if cadence_id in wanted:
                    found[cadence_id] = record["cadence"].numpy()
                    if len(found) == len(wanted):
                        return found
        except tf.errors.OpError as err:
            raise OSError(f"{path}: unreadable shard, {shard_lib.read_error_detail(err)}") from None
    return found


def load_cadences(sources: DataSources, ids: list[str], log=print,
                  who: str = "report") -> tuple[dict, str]:
    """``({id: cadence}, where they came from)``; ids found nowhere are absent from the dict.
    ``who`` starts the line logged when the shards cannot be read."""
    found, origin = {}, []
    if sources.kaggle and ids:
        found = from_kaggle(sources.kaggle, sources.kaggle_split, ids)
        if found:
            origin.append(f"Kaggle folder {sources.kaggle}")
    rest = [i for i in ids if i not in found]
    if rest and sources.shards:
        try:
            from_records = from_shards(sources.shards, rest)
        except (OSError, ValueError) as err:  # a shard folder that moved or is unreadable
            log(f"{who}: cannot read cadences from the shards {sources.shards}: {err}")
            from_records = {}
        if from_records:
            origin.append(f"TFRecord shards {sources.shards}")
        found.update(from_records)
    return found, " and ".join(origin)

"""The cadences of a few ids, for the waterfall plots: from the Kaggle-layout folder when it is
there (local or URL, read with :mod:`tfseti.io.kaggle`), else from the run's TFRecord shards
(local, parsed with :mod:`tfseti.io.records`): the shards of the complete folder
(``tfseti.io.shards.open_shard_folder``) or, when the folder does not pass that check, whatever
files are named like shards there (pictures only: nothing is trained or scored on them)."""

from __future__ import annotations

import numpy as np

from tfseti.io.kaggle import CadenceError, KaggleDataset
from tfseti.report.sources import DataSources


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

    from tfseti.io import shards as shard_lib
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


def load_cadences(sources: DataSources, ids: list[str], log=print) -> tuple[dict, str]:
    """``({id: cadence}, where they came from)``; ids found nowhere are absent from the dict."""
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
            log(f"report: cannot read cadences from the shards {sources.shards}: {err}")
            from_records = {}
        if from_records:
            origin.append(f"TFRecord shards {sources.shards}")
        found.update(from_records)
    return found, " and ".join(origin)

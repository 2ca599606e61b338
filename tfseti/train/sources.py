"""Which records train a fold: the labelled folds outside it, plus the extra shard folders.

``data.extra`` names shard folders whose every record joins the training of every fold:
pseudo-labelled shards (``tfseti.pseudo``: soft targets, schema v2) or another labelled dataset
(the competition's old data). They never join validation, and an extra record whose id is also
a validation id of the fold is refused (a pseudo-label of a validation cadence would leak the
teacher's view of it into the score). ``data.extra_ratio`` sets the extra records' share of
every batch; unset, it is their share of all training records.

Opening the sources checks every extra folder as any reader does (``open_shard_folder``:
complete, matching its manifest) and that its cadences have the labelled shards' shape. The ids
of a pseudo-label folder come from its ``pseudo_labels.csv`` (no record read); of another folder,
from reading its records' ids once per fold.
"""

from __future__ import annotations

import csv
import dataclasses

from tfseti.io import fs as fsutil
from tfseti.io.shards import PSEUDO_LABELS_NAME, ShardFolder, ShardFolderError, open_shard_folder

SHOWN_IDS = 5


@dataclasses.dataclass
class ExtraSource:
    """One folder of ``data.extra``: as configured, where TensorFlow reads it, its shards."""

    data: str
    readable: str
    folder: ShardFolder

    @property
    def files(self) -> list[str]:
        return self.folder.paths

    @property
    def records(self) -> int:
        return self.folder.num_records

    @property
    def kind(self) -> str:
        """``pseudo-labelled`` (a ``tfseti.pseudo`` folder) or the split its manifest names."""
        if "pseudo" in self.folder.manifest:
            return "pseudo-labelled"
        return self.folder.split or "shards"

    def ids(self) -> list[str]:
        """Every record's id: from ``pseudo_labels.csv`` when the folder has one, else read."""
        table = fsutil.join(self.readable, PSEUDO_LABELS_NAME)
        fs, inner = fsutil.url_to_fs(table)
        if "pseudo" in self.folder.manifest and fs.exists(inner):
            with fs.open(inner, "r") as handle:
                return [row["id"] for row in csv.DictReader(handle)]
        return read_ids(self.files)


@dataclasses.dataclass
class TrainingSources:
    """The training records of one fold."""

    files: list[str]            # the labelled training shards (every fold but the validated one)
    records: int
    extras: list[ExtraSource]
    extra_ratio: float          # share of extra records in the mixed stream (0: no extras)

    @property
    def extra_files(self) -> list[str]:
        return [path for source in self.extras for path in source.files]

    @property
    def extra_records(self) -> int:
        return sum(source.records for source in self.extras)

    @property
    def records_per_epoch(self) -> int:
        """An epoch: one pass over the labelled records, plus the extra share of the batches."""
        if not self.extras:
            return self.records
        return round(self.records / (1.0 - self.extra_ratio))

    def describe(self) -> list[str]:
        """One line per extra source (for the plan and the log)."""
        return [f"extra     {s.data}: {s.records} {s.kind} records in {len(s.files)} shard(s); "
                f"{self.extra_ratio:.0%} of every batch" for s in self.extras]

    def counts(self) -> dict:
        """Records by source, for the fold's ``data.json`` (and the report)."""
        return {"labelled": self.records,
                "extra": [{"data": s.data, "kind": s.kind, "records": s.records}
                          for s in self.extras],
                "extra_ratio": self.extra_ratio}


def open_extras(extra: tuple[str, ...] | list[str], readable=None) -> list[ExtraSource]:
    """The complete shard folders of ``data.extra`` (``readable(path)``: where TensorFlow reads
    each, a local copy of a URL it cannot read itself; default: as given)."""
    readable = readable or (lambda path: path)
    sources = []
    for data in extra:
        local = readable(data)
        try:
            folder = open_shard_folder(local)
        except ShardFolderError as err:
            raise ShardFolderError(f"data.extra: {err}") from None
        sources.append(ExtraSource(data=data, readable=local, folder=folder))
    return sources


def training_sources(folder: ShardFolder, fold: int, extras: list[ExtraSource],
                     extra_ratio: float | None) -> TrainingSources:
    """The sources of ``fold``: ``folder``'s other folds and the extras, at ``extra_ratio``
    (None: the extras' share of all records)."""
    files = folder.files("train", fold)
    records = folder.records_in(files)
    for source in extras:
        if tuple(source.folder.cadence_shape) != tuple(folder.cadence_shape):
            raise ShardFolderError(f"data.extra: {source.data} holds cadences of shape "
                                   f"{list(source.folder.cadence_shape)}, the training shards "
                                   f"{folder.path} {list(folder.cadence_shape)}")
    extra_records = sum(s.records for s in extras)
    if not extras:
        ratio = 0.0
    elif extra_ratio is None:
        ratio = extra_records / (records + extra_records)
    else:
        ratio = float(extra_ratio)
    return TrainingSources(files=files, records=records, extras=extras, extra_ratio=ratio)


def check_disjoint(extras: list[ExtraSource], validation_ids, fold: int) -> None:
    """Refuse extra records whose id is a validation id of ``fold``."""
    validation = set(validation_ids)
    for source in extras:
        shared = sorted(validation.intersection(source.ids()))
        if shared:
            raise ShardFolderError(
                f"data.extra: {source.data} holds {len(shared)} id(s) of fold {fold}'s validation "
                f"records, e.g. {shared[:SHOWN_IDS]}: extra records join training only, and a "
                f"validation cadence must not be trained on (pseudo-label the unlabelled set, "
                f"not the labelled one)")


def read_ids(files: list[str]) -> list[str]:
    """The ids of every record of ``files`` (only the id is parsed)."""
    import tensorflow as tf

    from tfseti.io.shards import corrupt_shard_error, detect_compression

    feature = {"id": tf.io.FixedLenFeature([], tf.string)}
    ids = []
    for path in files:
        dataset = tf.data.TFRecordDataset(path, compression_type=detect_compression(path) or "")
        dataset = dataset.batch(256).map(lambda s: tf.io.parse_example(s, feature)["id"])
        try:
            for batch in dataset.as_numpy_iterator():
                ids.extend(i.decode("utf-8") for i in batch)
        except tf.errors.DataLossError as err:
            raise corrupt_shard_error(err, [path]) from None
    return ids

"""Class balancing of the labelled training records (``data.balance``).

The Kaggle training set is about 10 % positive. ``data.balance`` changes how often each class is
drawn, without touching the records or the loss:

* ``oversample:R``: every positive is drawn R times as often as it would be; with a base positive
  rate p the positives' share of the labelled records becomes ``R p / (R p + 1 - p)``;
* ``per_batch:K``: every global batch holds exactly K positives (K / replicas per replica batch).

How (``tfseti.data.pipeline.train_dataset``): the labelled shards are read as two record streams,
the positives (hard ``label`` 1) and the negatives (every other label), each filtered right after
reading (before data sharding, so every input pipeline gets its part of each class), each
shuffled and repeated with its own seed. A deterministic sequence of stream indices
(:func:`choices`: 0 negative, 1 positive, 2 extra) says which stream record ``i`` of an input
pipeline comes from. It is a pure function of ``i`` and the settings, like
``pipeline.extra_choices``: the same on every pass and host, so ``data.deterministic`` training
stays one fixed sequence and a resumed run re-enters it at its step; without
``data.deterministic`` the records within each class come in arbitrary order but the class of
every slot is still fixed (shares and per-batch counts are exact either way).

* ``oversample``: record ``i`` of the labelled stream is positive when
  ``floor((i + 1) s) > floor(i s)``, ``s`` the derived share: exactly ``floor(n s)`` positives in
  the first ``n`` labelled records, spread evenly.
* ``per_batch``: position ``j`` of a per-replica batch of ``b`` records is positive when
  ``floor((j + 1) k / b) > floor(j k / b)`` (integer arithmetic): exactly ``k`` per batch, spread
  over the batch rather than packed at its start (mixup pairs neighbours too).

``data.extra`` sources are not balanced: they keep their place in the sequence (the extra
positions of ``extra_choices`` with ``oversample``; their share of the non-positive slots, so of
the whole batch, with ``per_batch``), and the labelled records around them are balanced. Soft
targets are untouched: a record goes to the stream of its hard label and trains on its target.

The class counts come from the shard folders' manifests (``classes`` of every shard): no record
is read to plan. A training set without positives (or negatives) is refused, since a stream of a
class that has no record would never yield. The cost: each class stream reads every shard to
find its records, so the bytes read grow to ``s / p + (1 - s) / (1 - p)`` times, ``s`` the
positives' drawn share and ``p`` their base rate (3x oversampling of 10 % positives: 3.3x).
"""

from __future__ import annotations

import dataclasses

from tfseti.data.config import DataConfig
from tfseti.io.shards import ShardFolder, ShardFolderError, open_shard_folder

NEGATIVE, POSITIVE, EXTRA = 0, 1, 2
# Seed offsets of the two class streams (shuffles of their own, not the unbalanced stream's).
SEED_OFFSETS = {NEGATIVE: 32452843, POSITIVE: 49979687}


@dataclasses.dataclass(frozen=True)
class Balance:
    """The balancing of one training run: the setting, the class counts it was planned on, the
    global batch and its replicas, and the extra share (0 without ``data.extra``)."""

    mode: str                 # "oversample" | "per_batch"
    value: float | int        # R | K
    negatives: int
    positives: int
    global_batch: int
    replicas: int = 1
    extra_ratio: float = 0.0

    @property
    def base_rate(self) -> float:
        """The positives' share of the labelled records as they are."""
        return self.positives / (self.positives + self.negatives)

    @property
    def positive_share(self) -> float:
        """The positives' share of the labelled records drawn (exact over the sequence)."""
        if self.mode == "oversample":
            weighted = self.value * self.positives
            return weighted / (weighted + self.negatives)
        return self.value / (self.global_batch * (1.0 - self.extra_ratio))

    @property
    def per_replica(self) -> int:
        """``per_batch``: positives in every replica's batch."""
        return self.value // self.replicas

    @property
    def slot_extra_ratio(self) -> float:
        """``per_batch`` with extras: the extras' share of the non-positive slots, so that they
        keep their share ``extra_ratio`` of the whole batch."""
        return self.extra_ratio * self.global_batch / (self.global_batch - self.value)

    def describe(self) -> str:
        """One line for the plan and the log."""
        extra = "; extra sources not balanced" if self.extra_ratio else ""
        if self.mode == "oversample":
            return (f"oversample:{self.value:g}: each positive drawn {self.value:g}x as often; "
                    f"positives {self.base_rate:.1%} of the labelled records -> "
                    f"{self.positive_share:.1%} drawn{extra}")
        per_replica = f" ({self.per_replica} per replica)" if self.replicas > 1 else ""
        plural = "" if self.value == 1 else "s"
        return (f"per_batch:{self.value}: exactly {self.value} positive{plural} in every global "
                f"batch of {self.global_batch}{per_replica}; labelled records "
                f"{self.base_rate:.1%} positive{extra}")


def plan(cfg: DataConfig, negatives: int, positives: int, global_batch: int, replicas: int = 1,
         extra_ratio: float = 0.0, where: str = "the training shards") -> Balance | None:
    """The :class:`Balance` of ``cfg.balance`` (None for ``none``) for a labelled training set of
    ``negatives`` / ``positives`` records; raises ValueError naming ``where`` (the data folder)
    for a set without one class, and for a K the batch cannot hold."""
    mode, value = cfg.balancing
    if mode == "none":
        return None
    setting = f"data.balance {cfg.balance!r}"
    for count, name in ((positives, "positive (label 1)"), (negatives, "negative (label 0)")):
        if count < 1:
            raise ValueError(f"{setting}: {where} hold no {name} record "
                             f"({positives} positive, {negatives} negative): nothing to balance; "
                             f"set data.balance = 'none'")
    if mode == "per_batch":
        if value >= global_batch:
            raise ValueError(f"{setting}: K must be below the global batch {global_batch} "
                             f"(K positives and at least one negative in every batch)")
        if value % replicas:
            raise ValueError(f"{setting}: {value} positives do not split evenly over "
                             f"{replicas} replicas (every replica's batch holds K / replicas); "
                             f"use a multiple of {replicas}")
        if extra_ratio and value >= global_batch * (1.0 - extra_ratio):
            raise ValueError(f"{setting}: with data.extra taking {extra_ratio:.0%} of every batch "
                             f"of {global_batch}, {value} positives leave no room for negatives "
                             f"(K must be below {global_batch * (1.0 - extra_ratio):g})")
    return Balance(mode, value, negatives, positives, global_batch, replicas, extra_ratio)


# ----------------------------------------------------------------------------- class counts


def _split(path: str) -> tuple[str, str]:
    folder, _, name = str(path).rstrip("/").rpartition("/")
    return folder or ".", name


def counts_in(folder: ShardFolder, files: list[str]) -> dict[str, tuple[int, int]]:
    """``{path: (negatives, positives)}`` of ``files`` (shards of the open ``folder``), from its
    manifest."""
    shards = {s.name: s for s in folder.shards}
    counts = {}
    for path in files:
        name = _split(path)[1]
        if name not in shards:
            raise ShardFolderError(f"{folder.path}: {name} is not in its manifest.json "
                                   f"(data.balance needs every training shard's class counts)")
        shard = shards[name]
        positives = sum(int(n) for label, n in shard.classes.items() if int(label) == 1)
        counts[path] = (int(shard.records) - positives, positives)
    return counts


def class_counts(files: list[str]) -> dict[str, tuple[int, int]]:
    """``{path: (negatives, positives)}`` of every shard of ``files``, from the manifests of their
    folders (``open_shard_folder``: no record read)."""
    by_folder: dict[str, list[str]] = {}
    for path in files:
        by_folder.setdefault(_split(path)[0], []).append(path)
    counts = {}
    for folder, paths in by_folder.items():
        counts.update(counts_in(open_shard_folder(folder), paths))
    return counts


def totals(counts: dict[str, tuple[int, int]], files=None) -> tuple[int, int]:
    """``(negatives, positives)`` summed over ``files`` (default: every entry of ``counts``)."""
    files = counts if files is None else files
    return sum(counts[f][0] for f in files), sum(counts[f][1] for f in files)


def folders_of(files: list[str]) -> str:
    """The folder(s) of ``files``, for a message."""
    return ", ".join(sorted({_split(f)[0] for f in files}))


# ----------------------------------------------------------------------------- tf.data parts


def keep(stream: int):
    """The ``Dataset.filter`` predicate of a class stream on serialized records: ``POSITIVE``
    keeps hard label 1, ``NEGATIVE`` every other label. Only the label is parsed."""
    import tensorflow as tf

    feature = {"target": tf.io.FixedLenFeature([], tf.int64)}

    def predicate(serialized):
        positive = tf.equal(tf.io.parse_single_example(serialized, feature)["target"], 1)
        return positive if stream == POSITIVE else tf.logical_not(positive)

    return predicate


def choices(balance: Balance, batch: int):
    """The stream of record ``i`` of an input pipeline's per-replica batches of ``batch``
    records: ``NEGATIVE``, ``POSITIVE`` or ``EXTRA`` (int64), a pure function of ``i`` (see the
    module docstring); an endless ``tf.data.Dataset``."""
    import tensorflow as tf

    extra = float(balance.extra_ratio)

    def floor_step(index, share):
        """1 where ``floor((index + 1) share) > floor(index share)`` (``index`` int64)."""
        x = tf.cast(index, tf.float64)
        return tf.cast(tf.floor((x + 1.0) * share) - tf.floor(x * share), tf.int64)

    if balance.mode == "oversample":
        share = balance.positive_share

        def choice(i):
            if not extra:
                return floor_step(i, share)
            # Extras where extra_choices puts them; labelled record i - floor(i r) otherwise.
            labelled = i - tf.cast(tf.floor(tf.cast(i, tf.float64) * extra), tf.int64)
            return tf.where(floor_step(i, extra) == 1, tf.constant(EXTRA, tf.int64),
                            floor_step(labelled, share))
    else:
        k, b = balance.per_replica, int(batch)
        slot_extra = balance.slot_extra_ratio if extra else 0.0

        def choice(i):
            j = i % b
            positive = ((j + 1) * k) // b - (j * k) // b
            if not extra:
                return positive
            # Index of this slot among the pipeline's non-positive slots so far.
            slot = i - (i // b) * k - (j * k) // b
            return tf.where(positive == 1, tf.constant(POSITIVE, tf.int64),
                            EXTRA * floor_step(slot, slot_extra))

    return tf.data.Dataset.range(2**62).map(choice)

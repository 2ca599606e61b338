"""The tf.data input pipeline: sharded TFRecords -> parsed, batched raw cadences, per replica.

The host only reads, parses (``tfseti.io.records.parse_batch``, the one parser) and batches; the
view, augmentation and mixup run in the compiled train step (``tfseti.data.augmenter.Augmenter``), or
here on the host when ``AugmentConfig.augment_on == "host"``.

Shards are ``train-f{k}-{i:05d}-of-{n:05d}.tfrec`` (fold k) and ``test-{i:05d}-of-{n:05d}.tfrec``
in one folder, local or ``gs://``, with the ``manifest.json`` the converter writes last. A folder is
opened through ``tfseti.io.shards.open_shard_folder`` (complete or refused: interrupted conversion,
missing/extra/resized shards, see there); a fold is then selected by file name (``fold_files``).
Read errors are not caught here: the callers (trainer, prediction) turn them into one message
naming the shard with ``tfseti.io.shards.corrupt_shard_error``.

Batches are dicts:

* training (``train_dataset``): ``cadence (B, P, 273, 256)``, ``target (B,)`` float32, ``id (B,)``
  string (``with_ids``); infinite (repeat), shuffled, non-deterministic read order (or, with
  ``deterministic``, one fixed seeded sequence that a resumed run re-enters at its step),
  ``drop_remainder=True`` so every shape is static. ``data.balance`` draws the classes at a set
  share or count per batch (``tfseti.data.balance``).
* evaluation / prediction (``eval_dataset``): the same plus ``index (B,)`` int64 (position of the
  record in the deterministic read order, -1 on padding) and ``mask (B,)`` bool. Every record comes
  exactly once; the last batch is padded to B (cadence 0, target -1, id "", mask False).

Multi-replica input (``distributed_train_dataset`` / ``distributed_eval_dataset``) goes through
``strategy.distribute_datasets_from_function``; each input pipeline gets the per-replica batch:

* training: file sharding (``Dataset.shard`` over files) when there are at least as many files as
  input pipelines, otherwise data sharding (every pipeline reads all files in the same seeded,
  deterministic order and keeps every n-th record), so no worker is ever left without data;
* evaluation: every pipeline reads all files in the same deterministic order, groups records by
  global batch and keeps its own replicas' slices; every replica gets the same number of batches
  (no hang at the end, no record dropped or duplicated). The price is that each input pipeline
  reads the whole (small) evaluation set; only its own slice is parsed.
"""

from __future__ import annotations

import tensorflow as tf

from tfseti.data import balance as balance_lib
from tfseti.data.config import DataConfig
from tfseti.io import records
from tfseti.io import shards as shard_lib
from tfseti.io.shards import detect_compression  # noqa: F401  (part of this module's API)

ROLES = ("train", "val", "test")
READ_BUFFER_BYTES = 8 << 20
# Fixed interleave width where the read order must be the same on every host (AUTOTUNE would
# resolve to each host's CPU count).
DETERMINISTIC_CYCLE = 8


# ----------------------------------------------------------------------------- shard selection


def list_shards(data: str) -> list[dict]:
    """Every shard of the complete shard folder ``data``: ``{path, split, fold (-1 without), index,
    count, records}``, sorted by name (``tfseti.io.shards.open_shard_folder``: a folder that is
    incomplete or not a shard folder raises ShardFolderError)."""
    folder = shard_lib.open_shard_folder(data)
    return [{"path": s.path, "split": s.split, "fold": s.fold, "index": s.index, "count": s.count,
             "records": s.records} for s in folder.shards]


def fold_files(data: str, role: str = "train", fold: int | None = None) -> list[str]:
    """Shard paths for a role, from the complete shard folder ``data``.

    ``train``: every ``train-*`` shard, except fold ``fold``'s when a fold is given;
    ``val``: fold ``fold``'s ``train-f{k}-*`` shards; ``test``: every ``test-*`` shard.
    """
    if role not in ROLES:
        raise ValueError(f"fold_files: role must be one of {ROLES}, got {role!r}")
    return shard_lib.open_shard_folder(data).files(role, fold)


def _compression(files: list[str], cfg: DataConfig) -> str | None:
    if cfg.compression == "auto":
        return detect_compression(files[0])
    return None if cfg.compression == "none" else cfg.compression


def cadence_shape(files: list[str], compression: str | None) -> tuple[int, int, int]:
    """The cadence shape of the first record of the first non-empty shard (from the record)."""
    for path in files:
        for serialized in tf.data.TFRecordDataset(path, compression_type=compression or "").take(1):
            shape = records.parse_example(serialized)["cadence"].shape
            shape = tuple(int(s) for s in shape)
            if shape not in records.PANELS_SHAPES.values():
                raise ValueError(f"{path}: cadence shape {shape}, expected one of "
                                 f"{sorted(records.PANELS_SHAPES.values())}")
            return shape
    raise ValueError(f"no records in {len(files)} shard(s), first {files[0] if files else None}")


# ----------------------------------------------------------------------------- datasets


def _pipeline(input_context) -> tuple[int, int, int]:
    """``(num_input_pipelines, input_pipeline_id, replicas per pipeline)``."""
    if input_context is None:
        return 1, 0, 1
    pipelines = input_context.num_input_pipelines
    return pipelines, input_context.input_pipeline_id, input_context.num_replicas_in_sync // pipelines


def _per_replica_batch(cfg: DataConfig, input_context) -> int:
    if input_context is None:
        return cfg.batch_size
    return input_context.get_per_replica_batch_size(cfg.batch_size)


def _finish(parsed: dict, cfg: DataConfig) -> dict:
    out = {"cadence": tf.cast(parsed["cadence"], cfg.cadence_dtype),
           "target": tf.cast(parsed["target"], tf.float32)}
    if cfg.with_ids:
        out["id"] = parsed["id"]
    return out


def _static(batch: dict, size: int) -> dict:
    """Give every tensor of a batch the static leading dimension ``size``."""
    return {k: tf.ensure_shape(v, [size, *v.shape[1:]]) for k, v in batch.items()}


def _read(files_ds: tf.data.Dataset, compression, cycle_length, deterministic: bool):
    return files_ds.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type=compression or "",
                                             buffer_size=READ_BUFFER_BYTES),
        cycle_length=cycle_length, block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic)


def _permuted(tensor: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """``tensor`` in a random order drawn from the stateless ``seed`` (shape (2,) int64)."""
    keys = tf.random.stateless_uniform(tf.shape(tensor)[:1], seed=seed)
    return tf.gather(tensor, tf.argsort(keys))


def _kept(ds: tf.data.Dataset, keep) -> tf.data.Dataset:
    """``ds`` filtered by ``keep`` (a predicate on serialized records; None keeps all)."""
    return ds if keep is None else ds.filter(keep)


def _deterministic_passes(files: list[str], compression, files_seed: int, record_seed: int,
                          sharding, cfg, keep=None) -> tf.data.Dataset:
    """Endless passes over the records; pass k's order depends on the seeds and k alone.

    ``Dataset.shuffle(reshuffle_each_iteration=True)`` draws each pass's order from a generator
    that advances with every iterator made of the dataset, and Keras's ``fit`` may make more
    than one, so the order would depend on that count. Here each pass permutes the files, and
    each block of ``shuffle_buffer`` records, with stateless seeds (seed, pass, block): every
    process sees one sequence. (A block shuffle mixes like a shuffle buffer of that size.)
    """
    cycle = min(len(files), DETERMINISTIC_CYCLE)
    files = tf.constant(list(files))

    def one_pass(index):
        index = tf.cast(index, tf.int64)
        ordered = _permuted(files, tf.stack([tf.constant(files_seed, tf.int64), index]))
        read = _kept(_read(tf.data.Dataset.from_tensor_slices(ordered), compression,
                           cycle, deterministic=True), keep)
        if sharding is not None:
            read = read.shard(*sharding)

        def shuffled_block(block_index, block):
            seed = tf.stack([tf.constant(record_seed, tf.int64), index * (1 << 32) + block_index])
            return tf.data.Dataset.from_tensor_slices(_permuted(block, seed))

        return read.batch(cfg.shuffle_buffer).enumerate().flat_map(shuffled_block)

    return tf.data.Dataset.range(2**62).flat_map(one_pass)


def _record_stream(files: list[str], cfg: DataConfig, pipelines: int, pipeline_id: int,
                   seed: int, keep=None, file_sharding: bool | None = None) -> tf.data.Dataset:
    """This input pipeline's endless, shuffled stream of serialized records of ``files``.

    ``keep``: only the records it accepts (a class stream of ``data.balance``), filtered as they
    are read, before data sharding. ``file_sharding``: False forces data sharding (default: file
    sharding when there are at least as many files as input pipelines)."""
    compression = _compression(files, cfg)
    if file_sharding is None:
        file_sharding = len(files) >= pipelines
    file_sharding = pipelines > 1 and file_sharding
    data_sharding = pipelines > 1 and not file_sharding
    files_ds = tf.data.Dataset.from_tensor_slices(list(files))
    if file_sharding:
        files_ds = files_ds.shard(pipelines, pipeline_id)
    n_files = len(files[pipeline_id::pipelines]) if file_sharding else len(files)
    # Data sharding needs the same file order in every pipeline: same seed, deterministic reads.
    files_seed = seed if data_sharding else seed + 7919 * pipeline_id
    record_seed = seed + 104729 * pipeline_id
    if cfg.deterministic:
        own_files = files[pipeline_id::pipelines] if file_sharding else list(files)
        return _deterministic_passes(own_files, compression, files_seed, record_seed,
                                     (pipelines, pipeline_id) if data_sharding else None, cfg,
                                     keep)
    files_ds = files_ds.shuffle(n_files, seed=files_seed, reshuffle_each_iteration=True)
    if data_sharding:
        ds = _read(files_ds, compression, min(n_files, DETERMINISTIC_CYCLE), deterministic=True)
        ds = _kept(ds, keep).shard(pipelines, pipeline_id)
    else:
        ds = _kept(_read(files_ds, compression, tf.data.AUTOTUNE, deterministic=False), keep)
    ds = ds.shuffle(cfg.shuffle_buffer, seed=record_seed, reshuffle_each_iteration=True)
    return ds.repeat()  # after the shuffle: an empty input ends instead of spinning forever


# Seed offset of the extra sources' stream (its shuffles are not the labelled stream's).
EXTRA_SEED_OFFSET = 15485863


def extra_choices(ratio: float) -> tf.data.Dataset:
    """0 (labelled) / 1 (extra) for record k of the mixed stream: 1 when ``floor((k + 1) r)``
    exceeds ``floor(k r)``. Exactly the share ``r`` over any run of records, the same sequence on
    every pass and host, no random state: a resumed run re-enters it at its step."""
    r = tf.constant(float(ratio), tf.float64)

    def choice(k):
        k = tf.cast(k, tf.float64)
        return tf.cast(tf.floor((k + 1.0) * r) - tf.floor(k * r), tf.int64)

    return tf.data.Dataset.range(2**62).map(choice)


def train_dataset(files: list[str], cfg: DataConfig, input_context=None, augmenter=None,
                  initial_step: int = 0, shape: tuple[int, int, int] | None = None,
                  extra_files: list[str] | tuple = (), extra_ratio: float = 0.0,
                  class_counts: dict | None = None) -> tf.data.Dataset:
    """Infinite shuffled training batches (of the per-replica size under ``input_context``).

    ``initial_step`` is the global train step of the first batch. With ``cfg.deterministic`` the
    batches are one fixed sequence for a given seed (and sharding) and the first ``initial_step``
    of them are skipped (read, not parsed), so a run resumed at step k gets batch k, as an
    uninterrupted run would. Otherwise the order is arbitrary and nothing is skipped.

    ``extra_files`` (shards of ``data.extra``: pseudo-labelled or other data) are a second
    stream of their own shuffle; a share ``extra_ratio`` of the records comes from it
    (:func:`extra_choices`). Records with a soft target train on it (``tfseti.io.records``).

    ``cfg.balance`` (``tfseti.data.balance``) reads the labelled ``files`` as a positive and a
    negative stream mixed by a deterministic sequence (the extras keep their share);
    ``class_counts`` (``{path: (negatives, positives)}``, default: from the shard folders'
    manifests) plans it.

    With ``augmenter`` in host mode (``augmenter.on_host``) the batches come out augmented and
    mixed (``{"image", "target", ...}``), batch k seeded with step ``initial_step + k``.
    """
    if not files:
        raise ValueError("train_dataset: no shard files")
    if extra_files and not 0.0 < extra_ratio < 1.0:
        raise ValueError(f"train_dataset: extra_ratio must be in (0, 1) with extra files, "
                         f"got {extra_ratio}")
    shape = shape or cadence_shape(files, _compression(files, cfg))
    batch = _per_replica_batch(cfg, input_context)
    pipelines, pipeline_id, _ = _pipeline(input_context)
    if cfg.balancing[0] != "none":
        ds = _balanced_stream(list(files), cfg, input_context, batch, list(extra_files),
                              extra_ratio, class_counts)
    else:
        ds = _record_stream(list(files), cfg, pipelines, pipeline_id, cfg.seed)
        if extra_files:
            extra = _record_stream(list(extra_files), cfg, pipelines, pipeline_id,
                                   cfg.seed + EXTRA_SEED_OFFSET)
            ds = tf.data.Dataset.choose_from_datasets([ds, extra], extra_choices(extra_ratio))
    ds = ds.batch(batch, drop_remainder=True)
    if cfg.deterministic and initial_step:
        ds = ds.skip(initial_step)  # still serialized: skipping costs reads, no parsing
    ds = ds.map(lambda serialized: _static(_finish(records.parse_batch(serialized, shape), cfg), batch),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=cfg.deterministic)
    if augmenter is not None and augmenter.on_host:
        from tfseti.data.augmenter import augment_on_host

        ds = augment_on_host(ds, augmenter, initial_step=initial_step)
    options = tf.data.Options()
    options.deterministic = cfg.deterministic
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def _balanced_stream(files: list[str], cfg: DataConfig, input_context, batch: int,
                     extra_files: list[str], extra_ratio: float, class_counts: dict | None):
    """The records of ``data.balance``: a negative and a positive stream of ``files`` (and the
    extra stream) chosen by ``balance.choices``. A class stream is file-sharded over input
    pipelines only when every pipeline's own files hold that class; otherwise it is
    data-sharded after the filter, and each pipeline needs one record of the class per pass."""
    counts = class_counts if class_counts is not None else balance_lib.class_counts(files)
    pipelines, pipeline_id, _ = _pipeline(input_context)
    replicas = input_context.num_replicas_in_sync if input_context is not None else 1
    negatives, positives = balance_lib.totals(counts, files)
    plan = balance_lib.plan(cfg, negatives, positives, cfg.batch_size, replicas,
                            extra_ratio if extra_files else 0.0,
                            where=f"the {len(files)} training shard(s) in "
                                  f"{balance_lib.folders_of(files)}")
    streams = []
    for stream, name in ((balance_lib.NEGATIVE, "negative"), (balance_lib.POSITIVE, "positive")):
        file_sharding = None
        if pipelines > 1:
            own = [files[p::pipelines] for p in range(pipelines)]
            total = negatives if stream == balance_lib.NEGATIVE else positives
            file_sharding = len(files) >= pipelines and all(
                balance_lib.totals(counts, part)[stream] > 0 for part in own)
            if not file_sharding and total < pipelines:
                raise ValueError(f"data.balance {cfg.balance!r}: {total} {name} record(s) in "
                                 f"{balance_lib.folders_of(files)} for {pipelines} input "
                                 f"pipelines (each needs at least one)")
        streams.append(_record_stream(files, cfg, pipelines, pipeline_id,
                                      cfg.seed + balance_lib.SEED_OFFSETS[stream],
                                      keep=balance_lib.keep(stream), file_sharding=file_sharding))
    if extra_files:
        streams.append(_record_stream(list(extra_files), cfg, pipelines, pipeline_id,
                                      cfg.seed + EXTRA_SEED_OFFSET))
    return tf.data.Dataset.choose_from_datasets(streams, balance_lib.choices(plan, batch))


def _pad_to(tensor: tf.Tensor, size: int, value) -> tf.Tensor:
    missing = size - tf.shape(tensor)[0]
    fill = tf.fill(tf.concat([[missing], tf.shape(tensor)[1:]], 0), tf.cast(value, tensor.dtype))
    return tf.concat([tensor, fill], axis=0)


def eval_dataset(files: list[str], cfg: DataConfig, input_context=None, augmenter=None,
                 shape: tuple[int, int, int] | None = None) -> tf.data.Dataset:
    """Finite, deterministic evaluation/prediction batches: every record exactly once, padded
    last batch with ``mask``; ``index`` is the record's position in the read order.

    With ``augmenter`` in host mode, the view is applied here (no augmentation).
    """
    if not files:
        raise ValueError("eval_dataset: no shard files")
    compression = _compression(files, cfg)
    shape = shape or cadence_shape(files, compression)
    batch = _per_replica_batch(cfg, input_context)
    pipelines, pipeline_id, replicas = _pipeline(input_context)
    local = batch * replicas                      # records this pipeline keeps per global batch
    global_batch = local * pipelines
    lo, hi = pipeline_id * local, (pipeline_id + 1) * local

    ds = _read(tf.data.Dataset.from_tensor_slices(list(files)), compression,
               min(len(files), DETERMINISTIC_CYCLE), deterministic=True)
    ds = ds.enumerate().batch(global_batch)

    def own_slice(index, serialized):
        index, serialized = index[lo:hi], serialized[lo:hi]
        parsed = records.parse_batch(serialized, shape)
        out = _finish(parsed, cfg)
        real = tf.shape(index)[0]
        out = {"cadence": _pad_to(out["cadence"], local, 0),
               "target": _pad_to(out["target"], local, -1),
               **({"id": _pad_to(out["id"], local, "")} if cfg.with_ids else {}),
               "index": _pad_to(index, local, -1),
               "mask": tf.range(local) < real}
        # (replicas, B, ...): unbatched below into one batch per local replica, in replica order.
        return {k: tf.reshape(v, [replicas, batch, *v.shape[1:]]) for k, v in out.items()}

    ds = ds.map(own_slice, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
    ds = ds.map(lambda b: _static(b, batch))
    if augmenter is not None and augmenter.on_host:
        ds = ds.map(lambda b: augmenter(b, training=False), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def distributed_train_dataset(strategy: tf.distribute.Strategy, files: list[str], cfg: DataConfig,
                              augmenter=None, initial_step: int = 0, extra_files=(),
                              extra_ratio: float = 0.0):
    """Per-replica training batches via ``strategy.distribute_datasets_from_function``."""
    compression = _compression(files, cfg)
    shape = cadence_shape(files, compression)
    # data.balance: the class counts of the manifests, read once for every input pipeline.
    counts = balance_lib.class_counts(files) if cfg.balancing[0] != "none" else None
    return strategy.distribute_datasets_from_function(
        lambda context: train_dataset(files, cfg, context, augmenter, initial_step, shape,
                                      extra_files=extra_files, extra_ratio=extra_ratio,
                                      class_counts=counts))


def distributed_eval_dataset(strategy: tf.distribute.Strategy, files: list[str], cfg: DataConfig,
                             augmenter=None):
    """Per-replica evaluation batches via ``strategy.distribute_datasets_from_function``."""
    compression = _compression(files, cfg)
    shape = cadence_shape(files, compression)
    return strategy.distribute_datasets_from_function(
        lambda context: eval_dataset(files, cfg, context, augmenter, shape))

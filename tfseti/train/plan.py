"""What ``python -m tfseti.train`` is about to do, printed once before anything is trained.

::

    plan: recipe cpu_demo (.../tfseti/recipes/cpu_demo.toml)
      data      /data/shards: 64 records in 2 shards, cadences 6x273x256
      fold 1    train 32 records, validation 32 records: 4 steps per epoch
      extra     runs/ns/round0/pseudo: 40 pseudo-labelled records in 1 shard(s); 56% of every batch
      training  2 epochs; strategy cpu (OneDeviceStrategy), 1 replica; global batch 8 (8 per replica)
      model     efficientnet_b0 on view 'on': input 32x32x1; precision float32
      output    runs/cpu_demo

With ``data.balance`` set, a ``balance`` line follows the extra lines (``tfseti.data.balance``:
``per_batch:2: exactly 2 positives in every global batch of 8; labelled records 10.0% positive``),
checked against each fold's class counts and the global batch. A global batch larger than a
fold's training records is refused (:func:`check_batch`; the CLI calls it before it touches the
output folder).

Everything here is read from the resolved config and the shard folder's manifest: nothing is
built and no record is read.
"""

from __future__ import annotations

from tfseti.config import ConfigError


def steps_per_epoch(train, n_train: int, global_batch: int) -> int:
    """``train.steps_per_epoch``, or one pass over ``n_train`` records rounded up to whole
    executions (Keras runs whole executions anyway; counted here, the schedule, augmentation
    seeds and backups agree with the steps really run)."""
    if train.steps_per_epoch is not None:
        return train.steps_per_epoch
    per_execution = train.steps_per_execution
    passes = max(1, n_train // global_batch)
    return -(-passes // per_execution) * per_execution


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _shape(values) -> str:
    return "x".join(str(v) for v in values)


def _balance(run, folder, fold: int, sources, global_batch: int, replicas: int) -> str | None:
    """``data.balance`` for ``fold`` (None: ``none``), checked against the class counts of its
    training shards (from the manifest) and the batch: a ConfigError before anything runs."""
    if run.data.balancing[0] == "none":
        return None
    from tfseti.data import balance as balance_lib

    negatives, positives = balance_lib.totals(balance_lib.counts_in(folder, sources.files))
    try:
        balance = balance_lib.plan(run.data, negatives, positives, global_batch, replicas,
                                   sources.extra_ratio,
                                   where=f"the training shards of fold {fold} (the other folds) "
                                         f"in {run.data.data}")
    except ValueError as err:
        raise ConfigError("data.balance", str(err)) from None
    return balance.describe()


def check_batch(run, strategy, folds: list[int], folder, extras=()) -> None:
    """ConfigError when the global batch is larger than a fold's training records: such a
    batch cannot be formed from one pass (the pipeline keeps filling it from a repeated
    dataset, growing until the machine runs out of memory), and a batch of the same records
    several times over is no training anyone meant. Called before anything is built."""
    from tfseti.train import strategy as strategy_lib
    from tfseti.train.sources import training_sources

    global_batch = strategy_lib.global_batch_size(run.train.batch_per_replica, strategy)
    for fold in folds:
        sources = training_sources(folder, fold, list(extras), run.data.extra_ratio)
        records = sources.records_per_epoch
        if global_batch > records:
            replicas = strategy.num_replicas_in_sync
            raise ConfigError(
                "train.batch_per_replica",
                f"the global batch of {global_batch} ({run.train.batch_per_replica} per replica x "
                f"{_n(replicas, 'replica')}) is larger than fold {fold}'s "
                f"{_n(records, 'training record')} in {run.data.data}; set "
                f"train.batch_per_replica <= {max(1, records // replicas)}")


def describe(run, strategy, folds: list[int], folder, out: str, strategy_kind: str,
             config_path: str | None = None, extras=()) -> str:
    """The plan of a run: ``run`` the resolved config, ``folder`` its open shard folder
    (:class:`tfseti.io.shards.ShardFolder`), ``extras`` the open ``data.extra`` folders
    (:class:`tfseti.train.sources.ExtraSource`), ``out`` where the outputs go."""
    from tfseti.train.sources import training_sources
    from tfseti.data.views import view_shape
    from tfseti.train import strategy as strategy_lib

    replicas = strategy.num_replicas_in_sync
    global_batch = strategy_lib.global_batch_size(run.train.batch_per_replica, strategy)
    try:
        precision = strategy_lib.resolve_precision(run.train.precision, strategy)
    except ValueError as err:
        raise ConfigError("train.precision", str(err)) from None
    cadences = folder.cadence_shape
    lines = [f"plan: recipe {run.name}" + (f" ({config_path})" if config_path else ""),
             f"  data      {run.data.data}: {_n(folder.num_records, 'record')} in "
             f"{_n(len(folder.shards), 'shard')}, cadences {_shape(cadences)}"]
    sources = None
    balances: dict[str, list[int]] = {}
    for fold in folds:
        sources = training_sources(folder, fold, list(extras), run.data.extra_ratio)
        balance = _balance(run, folder, fold, sources, global_batch, replicas)
        if balance is not None:
            balances.setdefault(balance, []).append(fold)
        n_val = folder.records_in(folder.files("val", fold))
        steps = steps_per_epoch(run.train, sources.records_per_epoch, global_batch)
        extra = f" + {sources.extra_records} extra" if sources.extras else ""
        lines.append(f"  fold {fold:<4} train {_n(sources.records, 'record')}{extra}, validation "
                     f"{_n(n_val, 'record')}: {_n(steps, 'step')} per epoch")
    check_batch(run, strategy, folds, folder, extras)  # after a fold's own data.balance refusal
    if sources is not None:
        lines += [f"  {line}" for line in sources.describe()]
    for balance, its_folds in balances.items():  # one line, or one per fold where they differ
        which = f"fold {', '.join(map(str, its_folds))}: " if len(balances) > 1 else ""
        lines.append(f"  balance   {which}{balance}")
    image = _shape(view_shape(run.view, *cadences))
    if run.view.learned_resize is not None:
        image += f" (learned resize to {_shape(run.view.learned_resize)})"
    lines += [
        f"  training  {_n(run.train.epochs, 'epoch')}; strategy {strategy_kind} "
        f"({type(strategy).__name__}), {_n(replicas, 'replica')}; "
        f"global batch {global_batch} ({run.train.batch_per_replica} per replica)",
        f"  model     {run.model.name} on view {run.view.name!r}: input {image}; "
        f"precision {precision}",
        f"  output    {out}",
    ]
    return "\n".join(lines)

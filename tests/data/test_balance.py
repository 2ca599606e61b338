"""``data.balance``: the setting, the deterministic class sequence, the balanced training
stream (exact counts, every record seen, determinism and exact resume, extras and soft targets,
input pipelines), and the option going from a recipe override to the trainer."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from harness import write_shard_manifest
from tfseti.data import balance as B
from tfseti.data import pipeline as P
from tfseti.data.config import DataConfig
from tfseti.io import records

SHAPE = records.PANELS_SHAPES["on"]          # the smaller records: (3, 273, 256)
# 24 labelled records in 3 shards of 8; cadence k is zero but for k at [0, 0, 0]. Six positives
# (p = 1/4); 22 and 23 are schema-v2 records with soft targets 0.8 (hard label 1) and 0.3 (0).
POSITIVES = {1, 6, 10, 15, 19, 22}
SOFT = {22: 0.8, 23: 0.3}
EXTRA_FIRST = 1000                             # keys of the extra records: 1000..1007


def write_labelled(root, keys_by_shard, positives=POSITIVES, soft=SOFT) -> list[str]:
    """``train-f{i}-00000-of-00001.tfrec``, one shard (fold i) per ``keys_by_shard`` entry, with
    the manifest readers require; returns the shard paths."""
    os.makedirs(root, exist_ok=True)
    paths = []
    for fold, keys in enumerate(keys_by_shard):
        path = os.path.join(root, f"train-f{fold}-00000-of-00001.tfrec")
        with tf.io.TFRecordWriter(path) as writer:
            for k in keys:
                cadence = np.zeros(SHAPE, np.float16)
                cadence[0, 0, 0] = k
                if k in soft:
                    example = records.encode_example(f"{k:015x}", cadence, fold=fold,
                                                     soft_target=soft[k])
                else:
                    example = records.encode_example(f"{k:015x}", cadence, int(k in positives),
                                                     fold)
                writer.write(example)
        paths.append(path)
    write_shard_manifest(root)
    return paths


def write_extra(root, n=8) -> list[str]:
    """A pseudo-label shard of ``n`` soft-target records (keys from ``EXTRA_FIRST``, soft target
    ``i / 10``)."""
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, "pseudo-00000-of-00001.tfrec")
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(n):
            cadence = np.zeros(SHAPE, np.float16)
            cadence[0, 0, 0] = EXTRA_FIRST + i
            writer.write(records.encode_example(f"{EXTRA_FIRST + i:015x}", cadence,
                                                soft_target=i / 10, source="pseudo:test"))
    write_shard_manifest(root)
    return [path]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("balance")
    files = write_labelled(str(root / "shards"), [range(0, 8), range(8, 16), range(16, 24)])
    return str(root), files


def expected_target(k: int) -> float:
    if k >= EXTRA_FIRST:
        return (k - EXTRA_FIRST) / 10
    return SOFT.get(k, float(k in POSITIVES))


def keys_of(ds, count) -> np.ndarray:
    """``(count, B)`` cadence keys of the first batches, after checking every target."""
    out = []
    for batch in ds.take(count):
        keys = batch["cadence"].numpy()[:, 0, 0, 0].astype(int)
        np.testing.assert_allclose(batch["target"].numpy(), [expected_target(k) for k in keys],
                                   rtol=1e-6)
        out.append(keys)
    return np.array(out)


def positive(keys) -> np.ndarray:
    return np.isin(keys, list(POSITIVES))


# ----------------------------------------------------------------------------- the setting


@pytest.mark.parametrize("text,parsed", [
    ("none", ("none", None)), ("oversample:3", ("oversample", 3.0)),
    ("oversample:1.5", ("oversample", 1.5)), ("per_batch:4", ("per_batch", 4))])
def test_balance_settings_parse(text, parsed):
    assert DataConfig(balance=text).balancing == parsed


@pytest.mark.parametrize("text,message", [
    ("oversample", "expected 'none', 'oversample:R'"), ("sideways:2", "expected 'none'"),
    ("oversample:x", "expected 'none'"), ("oversample:inf", "expected 'none'"),
    ("oversample:1", "oversample:R needs R > 1"), ("oversample:0.5", "oversample:R needs R > 1"),
    ("per_batch:0", "per_batch:K needs K >= 1"),
    ("per_batch:2.5", "expected .* 'per_batch:K' \\(an int K >= 1"),
    ("per_batch:", "expected 'none'"), (3, "expected 'none'")])
def test_bad_balance_settings_are_refused(text, message):
    with pytest.raises(ValueError, match=f"^DataConfig.balance: {message}"):
        DataConfig(balance=text)


def test_the_plan_checks_the_classes_and_the_batch():
    over = B.plan(DataConfig(balance="oversample:3"), negatives=30, positives=10, global_batch=8)
    p = 10 / 40
    assert over.base_rate == p and over.positive_share == pytest.approx(3 * p / (3 * p + 1 - p))
    assert over.describe() == ("oversample:3: each positive drawn 3x as often; positives 25.0% "
                               "of the labelled records -> 50.0% drawn")
    assert B.plan(DataConfig(), 30, 10, 8) is None
    per = B.plan(DataConfig(balance="per_batch:4"), 30, 10, 8, replicas=2)
    assert per.per_replica == 2 and per.positive_share == 0.5
    assert per.describe() == ("per_batch:4: exactly 4 positives in every global batch of 8 "
                              "(2 per replica); labelled records 25.0% positive")
    cfg = DataConfig(balance="per_batch:4")
    with pytest.raises(ValueError, match="^data.balance 'per_batch:4': /data/x hold no positive "
                                         "\\(label 1\\) record \\(0 positive, 40 negative\\)"):
        B.plan(cfg, 40, 0, 8, where="/data/x")
    with pytest.raises(ValueError, match="/data/x hold no negative"):
        B.plan(DataConfig(balance="oversample:2"), 0, 40, 8, where="/data/x")
    with pytest.raises(ValueError, match="K must be below the global batch 4"):
        B.plan(cfg, 30, 10, 4)
    with pytest.raises(ValueError, match="4 positives do not split evenly over 3 replicas"):
        B.plan(cfg, 30, 10, 12, replicas=3)
    with pytest.raises(ValueError, match="with data.extra taking 50% of every batch of 8, 4 "
                                         "positives leave no room for negatives"):
        B.plan(cfg, 30, 10, 8, extra_ratio=0.5)


# ----------------------------------------------------------------------------- the sequence


def sequence(balance, batch, n):
    return np.array(list(B.choices(balance, batch).take(n).as_numpy_iterator()))


def test_choices_follow_their_formulas():
    per = B.plan(DataConfig(balance="per_batch:3"), 30, 10, global_batch=8)
    seq = sequence(per, 8, 80).reshape(10, 8)
    pattern = [((j + 1) * 3) // 8 - (j * 3) // 8 for j in range(8)]
    assert pattern == [0, 0, 1, 0, 0, 1, 0, 1]          # spread over the batch, 3 of 8
    assert (seq == pattern).all()

    over = B.plan(DataConfig(balance="oversample:2"), 18, 6, global_batch=8)   # s = 0.4
    seq = sequence(over, 8, 200)
    assert set(seq) == {0, 1}
    assert (np.cumsum(seq) == np.floor(np.arange(1, 201) * 0.4)).all()

    # With extras: they keep extra_choices' places; the labelled records between are balanced.
    over_x = B.plan(DataConfig(balance="oversample:2"), 18, 6, 8, extra_ratio=0.25)
    seq = sequence(over_x, 8, 200)
    extras = np.array(list(P.extra_choices(0.25).take(200).as_numpy_iterator()))
    np.testing.assert_array_equal(seq == B.EXTRA, extras == 1)
    labelled = seq[seq != B.EXTRA]
    assert (np.cumsum(labelled) == np.floor(np.arange(1, len(labelled) + 1) * 0.4)).all()

    per_x = B.plan(DataConfig(balance="per_batch:2"), 18, 6, 8, extra_ratio=0.25)
    seq = sequence(per_x, 8, 80).reshape(10, 8)
    assert ((seq == B.POSITIVE).sum(1) == 2).all() and ((seq == B.EXTRA).sum(1) == 2).all()
    assert ((seq == B.NEGATIVE).sum(1) == 4).all()


# ----------------------------------------------------------------------------- the stream


@pytest.mark.parametrize("deterministic", [False, True])
def test_per_batch_puts_exactly_k_positives_in_every_batch_and_starves_no_record(
        labelled, deterministic):
    _, files = labelled
    cfg = DataConfig(batch_size=8, shuffle_buffer=8, deterministic=deterministic,
                     balance="per_batch:2")
    passes = 3 if deterministic else 6
    keys = keys_of(P.train_dataset(files, cfg), 3 * passes)   # 6 positives, 18 negatives a pass
    pattern = [((j + 1) * 2) // 8 - (j * 2) // 8 for j in range(8)]
    assert (positive(keys) == np.array(pattern, bool)).all()    # 2 of 8, the same places
    counts = dict(zip(*np.unique(keys, return_counts=True)))
    assert set(counts) == set(range(24))                        # no record starved
    if deterministic:
        assert set(counts.values()) == {3}
    else:
        # The batches are parsed in parallel and come out in any order (data.deterministic off):
        # the first 18 out may hold a batch of pass 7 instead of one of pass 6, so a record is
        # seen 6 times give or take the few batches in flight, never 0 or twice as often.
        assert 4 <= min(counts.values()) and max(counts.values()) <= 8


@pytest.mark.parametrize("deterministic", [False, True])
def test_oversample_draws_each_positive_r_times_as_often_at_the_exact_share(labelled,
                                                                            deterministic):
    _, files = labelled
    cfg = DataConfig(batch_size=8, shuffle_buffer=8, deterministic=deterministic,
                     balance="oversample:2")
    keys = keys_of(P.train_dataset(files, cfg), 15).ravel()    # 120 records
    p, r = 6 / 24, 2.0
    share = 2 * 6 / (2 * 6 + 18)                                # R P / (R P + N), as planned
    assert share == pytest.approx(r * p / (r * p + 1 - p)) == pytest.approx(0.4)
    counts = dict(zip(*np.unique(keys, return_counts=True)))
    assert set(counts) == set(range(24))                        # no record starved
    positives = [counts[k] for k in POSITIVES]
    negatives = [counts[k] for k in set(range(24)) - POSITIVES]
    if deterministic:
        # Exactly floor(n s) positives among the first n records, for every n (not only on average).
        assert (np.cumsum(positive(keys)) == np.floor(np.arange(1, 121) * share)).all()
        # 48 positive draws over 6 records, 72 negative over 18: a positive is drawn 2x as often.
        assert set(positives) == {8} and set(negatives) == {4}
    else:
        # Batches come out of the parallel parse in any order (data.deterministic off): the first
        # 15 out may swap a few for later ones (3 or 4 positives each), so the totals are exact
        # give or take those; still about twice as many draws per positive record.
        assert abs(int(positive(keys).sum()) - 48) <= 4
        assert 6 <= min(positives) and max(positives) <= 10
        assert 2 <= min(negatives) and max(negatives) <= 6


@pytest.mark.parametrize("balance", ["per_batch:2", "oversample:2"])
def test_balanced_training_is_deterministic_and_resumes_exactly(labelled, tmp_path, balance):
    _, files = labelled
    extra = write_extra(str(tmp_path / "pseudo"))
    cfg = DataConfig(batch_size=4, shuffle_buffer=8, deterministic=True, seed=5, balance=balance)

    def run(initial_step, count):
        ds = P.train_dataset(files, cfg, initial_step=initial_step, shape=SHAPE,
                             extra_files=extra, extra_ratio=0.25)
        return keys_of(ds, count)

    whole = run(0, 8)
    assert run(0, 8).tolist() == whole.tolist()           # two runs: the same batches
    assert run(5, 3).tolist() == whole[5:].tolist()       # a resumed run continues the sequence
    assert ((whole >= EXTRA_FIRST).sum(1) == 1).all()     # the extras' 25 % of every batch of 4
    if balance == "per_batch:2":
        assert (positive(whole).sum(1) == 2).all()
    else:
        labelled_keys = whole[whole < EXTRA_FIRST]
        assert (np.cumsum(positive(labelled_keys))
                == np.floor(np.arange(1, len(labelled_keys) + 1) * 0.4)).all()


def test_extra_sources_keep_their_share_and_soft_targets(labelled, tmp_path):
    """(Read in arrival order; the deterministic order is checked with extras above.)"""
    _, files = labelled
    extra = write_extra(str(tmp_path / "pseudo"))
    per = DataConfig(batch_size=8, shuffle_buffer=8, balance="per_batch:2")
    keys = keys_of(P.train_dataset(files, per, extra_files=extra, extra_ratio=0.25), 6)
    assert ((keys >= EXTRA_FIRST).sum(1) == 2).all()      # 25 % of every batch of 8
    assert (positive(keys).sum(1) == 2).all()             # and exactly 2 labelled positives
    over = DataConfig(batch_size=8, shuffle_buffer=8, balance="oversample:2")
    batches = keys_of(P.train_dataset(files, over, extra_files=extra, extra_ratio=0.25), 10)
    assert ((batches >= EXTRA_FIRST).sum(1) == 2).all()
    # Batches leave the parallel parse in any order here, so the exact running share (checked in
    # order above) becomes what holds for every batch on its own: 6 consecutive labelled places of
    # floor(n * 0.4) hold 2 or 3 positives, and 10 batches about 24, give or take one swapped batch.
    labelled_rows = np.where(batches < EXTRA_FIRST, positive(batches), 0).sum(1)
    assert set(labelled_rows) <= {2, 3} and abs(int(labelled_rows.sum()) - 24) <= 3
    labelled_keys = batches[batches < EXTRA_FIRST]
    # (keys_of checked every target: 22 trains on 0.8, 23 on 0.3, the extras on theirs.)
    assert {22, 23} <= set(labelled_keys)


def test_a_training_set_without_positives_is_refused_naming_its_folder(labelled, tmp_path):
    files = write_labelled(str(tmp_path / "negatives"), [range(4), range(4, 8)], positives=set(),
                           soft={})
    cfg = DataConfig(batch_size=4, balance="oversample:2")
    with pytest.raises(ValueError, match=f"the 2 training shard\\(s\\) in {tmp_path}/negatives "
                                         f"hold no positive \\(label 1\\) record"):
        P.train_dataset(files, cfg)
    with pytest.raises(ValueError, match="K must be below the global batch 4"):
        P.train_dataset(labelled[1], DataConfig(batch_size=4, balance="per_batch:4"))


def test_input_pipelines_each_get_their_positives_when_one_shard_holds_them_all(tmp_path):
    """Two pipelines, two shards, every positive in the second: file sharding would leave the
    first without positives, so the positive stream is sharded by record after the filter."""
    files = write_labelled(str(tmp_path / "shards"), [range(0, 8), range(8, 16)],
                           positives={9, 11, 13, 15}, soft={})
    cfg = DataConfig(batch_size=8, shuffle_buffer=1, deterministic=True, balance="per_batch:2")
    seen = []
    for pid in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pid,
                                             num_replicas_in_sync=2)
        keys = np.array([b["cadence"].numpy()[:, 0, 0, 0].astype(int)
                         for b in P.train_dataset(files, cfg, input_context=context).take(2)])
        assert keys.shape == (2, 4)                      # per-replica batches of 4
        assert (np.isin(keys, [9, 11, 13, 15]).sum(1) == 1).all()   # K / replicas = 1 each
        seen.append(keys[np.isin(keys, [9, 11, 13, 15])].tolist())
    assert sorted(seen[0] + seen[1]) == [9, 11, 13, 15]  # disjoint halves of the positives
    # One pipeline feeding 2 replicas (MirroredStrategy): every replica batch holds K / 2.
    mirrored = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0,
                                          num_replicas_in_sync=2)
    for batch in P.train_dataset(files, cfg, input_context=mirrored).take(4):
        keys = batch["cadence"].numpy()[:, 0, 0, 0].astype(int)
        assert len(keys) == 4 and np.isin(keys, [9, 11, 13, 15]).sum() == 1
    with pytest.raises(ValueError, match="3 positives do not split evenly over 2 replicas"):
        P.train_dataset(files, DataConfig(batch_size=8, balance="per_batch:3"),
                        input_context=mirrored)
    one = write_labelled(str(tmp_path / "one"), [range(0, 8), range(8, 16)], positives={9},
                         soft={})
    with pytest.raises(ValueError, match="1 positive record\\(s\\) in .* for 2 input pipelines"):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=0,
                                             num_replicas_in_sync=2)
        P.train_dataset(one, cfg, input_context=context)


# ----------------------------------------------------------------------------- the trainer


class _Built(Exception):
    """Raised by the stand-in fit_fold once the training dataset has been looked at."""


def test_a_recipe_override_reaches_the_trainer_and_its_plan(tmp_path, capsys, monkeypatch):
    from tfseti.train import cli, folds

    data = tmp_path / "shards"
    write_labelled(str(data), [range(0, 8), range(8, 16)])   # fold 1 trains on 0..7: 1, 6 positive
    args = ["--config", "cpu_demo", "--strategy", "cpu", "--fold", "1", "--data", str(data),
            "--out", str(tmp_path / "run"), "--no-report", "--overwrite", "model.name=plain_cnn_s",
            "view.resize=[32, 32]", "train.epochs=1", "train.batch_per_replica=4",
            "train.steps_per_execution=1", "mixup.mixup_p=0.0", "augment.off_shuffle_p=0.0",
            "data.balance=per_batch:1"]
    assert cli.resolve_run(cli.parse_args(args)).data.balance == "per_batch:1"
    got = {}

    def fake_fit_fold(run, strategy, augmenter, train_dataset, *rest, **kwargs):
        got["balance"] = run.data.balance
        batches = iter(train_dataset(0))
        got["targets"] = [strategy.experimental_local_results(next(batches)["target"])[0]
                          .numpy().tolist() for _ in range(4)]
        raise _Built

    monkeypatch.setattr(folds, "fit_fold", fake_fit_fold)
    with pytest.raises(_Built):
        cli.main(args)
    assert got["balance"] == "per_batch:1"
    assert [sum(t) for t in got["targets"]] == [1.0] * 4        # 1 positive in every batch of 4
    printed = capsys.readouterr().out
    assert ("\n  balance   per_batch:1: exactly 1 positive in every global batch of 4; labelled "
            "records 25.0% positive\n") in printed
    # A K the batch cannot hold is refused by the plan, before anything is built.
    assert cli.main([*args[:-1], "data.balance=per_batch:4"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "error: data.balance 'per_batch:4': K must be below the global batch 4 (K positives and "
        "at least one negative in every batch)")


def test_the_plan_prints_one_balance_line_per_distinct_fold_and_refuses_a_fold_without_positives(
        tmp_path):
    from tfseti.config import ConfigError
    from tfseti.io.shards import open_shard_folder
    from tfseti.train import cli, plan

    data = tmp_path / "shards"
    # Training positives: fold 0 -> 5 of 16, fold 1 -> 5 of 16, fold 2 -> 4 of 16.
    write_labelled(str(data), [range(0, 8), range(8, 16), range(16, 24)],
                   positives=POSITIVES | {23}, soft={})
    run = cli.resolve_run(cli.parse_args(["--config", "cpu_demo", "--data", str(data),
                                          "train.batch_per_replica=8",
                                          "data.balance=oversample:2"]))
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    lines = plan.describe(run, strategy, [0, 1, 2], open_shard_folder(str(data)), "out",
                          "cpu").splitlines()
    assert [line for line in lines if line.startswith("  balance")] == [
        "  balance   fold 0, 1: oversample:2: each positive drawn 2x as often; positives 31.2% of "
        "the labelled records -> 47.6% drawn",                       # 10 / (10 + 11)
        "  balance   fold 2: oversample:2: each positive drawn 2x as often; positives 25.0% of "
        "the labelled records -> 40.0% drawn"]
    only_fold0 = tmp_path / "only_fold0"
    write_labelled(str(only_fold0), [range(0, 8), range(8, 16)], positives={1, 6}, soft={})
    run = cli.resolve_run(cli.parse_args(["--config", "cpu_demo", "--data", str(only_fold0),
                                          "data.balance=per_batch:2"]))
    with pytest.raises(ConfigError, match=f"^data.balance 'per_batch:2': the training shards of "
                                          f"fold 0 \\(the other folds\\) in {only_fold0} hold no "
                                          f"positive \\(label 1\\) record"):
        plan.describe(run, strategy, [1, 0], open_shard_folder(str(only_fold0)), "out", "cpu")

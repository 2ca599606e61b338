"""The tf.data builder on tiny shards: fold selection, training shapes, exactly-once evaluation,
file vs data sharding over input pipelines, and MirroredStrategy over 2 logical CPU devices."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfseti.data import pipeline as P
from tfseti.data.config import AugmentConfig, MixupConfig, ViewConfig
from tfseti.data.augmenter import Augmenter
from tfseti.io import records

from harness import write_shard_manifest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_shards(root, folds=3, shards_per_fold=2, per_shard=3, n_test=0, panels="all",
                 gzip=False) -> dict:
    """Shards named like ``tfrecords_tools.convert`` writes them, with their manifest; returns
    ``{path: [ids]}``.

    Cadence ``k`` is zero but for the value ``k`` at [0, 0, 0], so a batch shows which records
    it holds; ids are ``f"{k:015x}"``; targets alternate.
    """
    shape = records.PANELS_SHAPES[panels]
    options = tf.io.TFRecordOptions(compression_type="GZIP" if gzip else "")
    written, k = {}, 0

    def shard(name, fold, count):
        nonlocal k
        path = os.path.join(root, name)
        ids = []
        with tf.io.TFRecordWriter(path, options) as writer:
            for _ in range(count):
                cadence = np.zeros(shape, np.float16)
                cadence[0, 0, 0] = k
                ids.append(f"{k:015x}")
                writer.write(records.encode_example(ids[-1], cadence, target=k % 2, fold=fold))
                k += 1
        written[path] = ids

    for fold in range(folds):
        for i in range(shards_per_fold):
            shard(f"train-f{fold}-{i:05d}-of-{shards_per_fold:05d}.tfrec", fold, per_shard)
    if n_test:
        shard("test-00000-of-00001.tfrec", -1, n_test)
    write_shard_manifest(root, compression="GZIP" if gzip else None)
    return written


@pytest.fixture
def shards(tmp_path):
    return str(tmp_path), write_shards(str(tmp_path), n_test=5)


def ids_of(files, written):
    return sorted(i for f in files for i in written[f])


def test_fold_selection_picks_the_right_shards(shards):
    root, written = shards
    names = lambda files: sorted(os.path.basename(f) for f in files)   # noqa: E731
    assert names(P.fold_files(root, "val", 1)) == ["train-f1-00000-of-00002.tfrec",
                                                   "train-f1-00001-of-00002.tfrec"]
    assert all("-f1-" not in n for n in names(P.fold_files(root, "train", 1)))
    assert len(P.fold_files(root, "train", 1)) == 4
    assert len(P.fold_files(root, "train")) == 6
    assert names(P.fold_files(root, "test")) == ["test-00000-of-00001.tfrec"]
    with pytest.raises(FileNotFoundError, match=r"fold 7.*folds \[0, 1, 2\]"):
        P.fold_files(root, "val", 7)
    with pytest.raises(FileNotFoundError, match="no such shard folder"):
        P.fold_files(os.path.join(root, "missing"))


def test_training_batches_have_static_shapes_and_repeat(shards):
    root, written = shards
    files = P.fold_files(root, "train", 0)
    cfg = P.DataConfig(batch_size=4, shuffle_buffer=8)
    ds = P.train_dataset(files, cfg)
    spec = ds.element_spec
    assert spec["cadence"].shape.as_list() == [4, 6, 273, 256] and spec["cadence"].dtype == tf.float16
    assert spec["target"].shape.as_list() == [4] and spec["target"].dtype == tf.float32
    seen = []
    for batch in ds.take(5):            # 20 records from 12: the dataset repeats
        seen += [i.decode() for i in batch["id"].numpy()]
        keys = batch["cadence"].numpy()[:, 0, 0, 0].astype(int)
        np.testing.assert_array_equal(batch["target"].numpy(), keys % 2)
        assert [f"{k:015x}" for k in keys] == [i.decode() for i in batch["id"].numpy()]
    assert set(seen) == set(ids_of(files, written))
    assert ds.options().deterministic is False


def write_pseudo_shard(root, n=10, first=1000) -> dict:
    """A ``pseudo-00000-of-00001.tfrec`` of schema-v2 records: cadence key ``first + i``, soft
    target ``i / 20``; returns ``{id: soft target}``."""
    os.makedirs(root, exist_ok=True)
    soft = {}
    with tf.io.TFRecordWriter(os.path.join(root, "pseudo-00000-of-00001.tfrec")) as writer:
        for i in range(n):
            cadence = np.zeros((6, 273, 256), np.float16)
            cadence[0, 0, 0] = first + i
            cadence_id = f"{first + i:015x}"
            soft[cadence_id] = i / 20
            writer.write(records.encode_example(cadence_id, cadence, soft_target=i / 20,
                                                source="pseudo:test"))
    write_shard_manifest(root)
    return soft


def test_extra_choices_give_the_exact_share_in_every_window():
    choices = np.array(list(P.extra_choices(0.3).take(200).as_numpy_iterator()))
    assert set(choices) == {0, 1}
    for start in range(0, 200, 10):       # every 10 consecutive records hold exactly 3 extras
        assert choices[start:start + 10].sum() == 3
    assert np.array(list(P.extra_choices(0.5).take(6).as_numpy_iterator())).tolist() == [0, 1] * 3


@pytest.mark.parametrize("deterministic", [False, True])
def test_extra_sources_join_training_at_their_share_with_soft_targets(shards, tmp_path,
                                                                      deterministic):
    root, written = shards
    soft = write_pseudo_shard(str(tmp_path / "pseudo"))
    files = P.fold_files(root, "train", 0)
    extra = [str(tmp_path / "pseudo" / "pseudo-00000-of-00001.tfrec")]
    cfg = P.DataConfig(batch_size=10, shuffle_buffer=8, deterministic=deterministic)
    ds = P.train_dataset(files, cfg, extra_files=extra, extra_ratio=0.4)
    labelled = set(ids_of(files, written))
    for batch in ds.take(6):
        ids = [i.decode() for i in batch["id"].numpy()]
        targets = batch["target"].numpy()
        from_extra = [i for i in ids if i in soft]
        assert len(from_extra) == 4                        # 40 % of every batch of 10
        assert all(i in labelled for i in ids if i not in soft)
        for cadence_id, target in zip(ids, targets):
            expected = soft[cadence_id] if cadence_id in soft else int(cadence_id, 16) % 2
            assert target == pytest.approx(expected)
    with pytest.raises(ValueError, match="extra_ratio must be in \\(0, 1\\)"):
        P.train_dataset(files, cfg, extra_files=extra, extra_ratio=0.0)


def test_a_resumed_pipeline_with_extra_sources_continues_the_same_sequence(shards, tmp_path):
    root, _ = shards
    write_pseudo_shard(str(tmp_path / "pseudo"))
    files = P.fold_files(root, "train", 0)
    extra = [str(tmp_path / "pseudo" / "pseudo-00000-of-00001.tfrec")]
    cfg = P.DataConfig(batch_size=4, shuffle_buffer=8, deterministic=True, seed=3)

    def keys(initial_step, count):
        ds = P.train_dataset(files, cfg, extra_files=extra, extra_ratio=0.25,
                             initial_step=initial_step)
        return [b["cadence"].numpy()[:, 0, 0, 0].tolist() for b in ds.take(count)]

    whole = keys(0, 9)
    assert keys(5, 4) == whole[5:]


@pytest.mark.parametrize("gzip", [False, True])
def test_evaluation_covers_every_record_exactly_once_with_a_mask(tmp_path, gzip):
    written = write_shards(str(tmp_path), folds=1, shards_per_fold=3, per_shard=4,
                           gzip=gzip)
    files = sorted(written)
    n = sum(len(v) for v in written.values())              # 12 records, batch 5: 5 + 5 + 2
    cfg = P.DataConfig(batch_size=5, cadence_dtype="float32")
    batches = list(P.eval_dataset(files, cfg))
    assert len(batches) == -(-n // 5)
    ids, indices = [], []
    for batch in batches:
        assert batch["cadence"].shape == (5, 6, 273, 256) and batch["cadence"].dtype == tf.float32
        mask = batch["mask"].numpy()
        ids += [i.decode() for i in batch["id"].numpy()[mask]]
        indices += batch["index"].numpy()[mask].tolist()
        assert (batch["id"].numpy()[~mask] == b"").all() and (batch["target"].numpy()[~mask] == -1).all()
        assert (batch["cadence"].numpy()[~mask] == 0).all()
    assert batches[-1]["mask"].numpy().tolist() == [True, True, False, False, False]
    assert sorted(ids) == ids_of(files, written) and len(ids) == n
    assert indices == list(range(n))
    again = [i.decode() for b in P.eval_dataset(files, cfg) for i in b["id"].numpy()[b["mask"].numpy()]]
    assert again == ids                                    # deterministic order


def test_on_only_shards_give_three_panels_and_refuse_off_views(tmp_path):
    written = write_shards(str(tmp_path), folds=1, shards_per_fold=1, per_shard=3, panels="on")
    files = sorted(written)
    batch = next(iter(P.eval_dataset(files, P.DataConfig(batch_size=2))))
    assert batch["cadence"].shape == (2, 3, 273, 256)
    assert Augmenter(ViewConfig("on"))(batch, training=False)["image"].shape == (2, 819, 256, 1)
    with pytest.raises(ValueError, match="only the 3 ON"):
        Augmenter(ViewConfig("all"))(batch, training=False)


def test_host_augmentation_yields_finished_images(shards):
    root, _ = shards
    augmenter = Augmenter(ViewConfig("on", resize=(64, 32)),
                          AugmentConfig(augment_on="host", vflip_p=0.5, time_mask_p=0.5),
                          MixupConfig(mixup_p=1.0))
    ds = P.train_dataset(P.fold_files(root, "train"), P.DataConfig(batch_size=4), augmenter=augmenter)
    batch = next(iter(ds))
    assert batch["image"].shape == (4, 64, 32, 1) and "cadence" not in batch
    assert ((batch["target"].numpy() >= 0) & (batch["target"].numpy() <= 1)).all()
    ev = next(iter(P.eval_dataset(P.fold_files(root, "val", 0), P.DataConfig(batch_size=4),
                                  augmenter=augmenter)))
    assert ev["image"].shape == (4, 64, 32, 1) and ev["mask"].shape == (4,)


def first_epoch_ids(ds, count):
    return [i.decode() for b in ds.take(count) for i in b["id"].numpy()]


@pytest.mark.parametrize("n_files,pipelines", [(2, 3), (4, 2)])
def test_input_pipelines_partition_the_records(tmp_path, n_files, pipelines):
    """Data sharding when files < pipelines, file sharding otherwise: one epoch's worth from each
    pipeline is disjoint from the others and together they hold every record."""
    written = write_shards(str(tmp_path), folds=1, shards_per_fold=n_files, per_shard=6)
    files = sorted(written)
    n = 6 * n_files
    cfg = P.DataConfig(batch_size=pipelines, shuffle_buffer=1)
    parts = []
    for pid in range(pipelines):
        context = tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=pid,
                                             num_replicas_in_sync=pipelines)
        parts.append(first_epoch_ids(P.train_dataset(files, cfg, input_context=context), n // pipelines))
    flat = sorted(i for part in parts for i in part)
    assert flat == ids_of(files, written)


def test_multi_pipeline_evaluation_is_exactly_once_and_even(tmp_path):
    written = write_shards(str(tmp_path), folds=1, shards_per_fold=3, per_shard=5)   # 15 records
    files = sorted(written)
    cfg = P.DataConfig(batch_size=8)      # 2 pipelines x 2 replicas: 2 records per replica batch
    per_pipeline = []
    for pid in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pid,
                                             num_replicas_in_sync=4)
        per_pipeline.append(list(P.eval_dataset(files, cfg, input_context=context)))
    assert len(per_pipeline[0]) == len(per_pipeline[1]) == 2 * 2   # ceil(15 / 8) rounds x 2 replicas
    ids = [i.decode() for batches in per_pipeline for b in batches
           for i in b["id"].numpy()[b["mask"].numpy()]]
    assert sorted(ids) == ids_of(files, written) and len(ids) == 15


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfseti.data import pipeline as P
    from tfseti.data.config import AugmentConfig
    from tfseti.data.augmenter import Augmenter
    from tfseti.data.config import MixupConfig
    from tfseti.data.config import ViewConfig

    root = sys.argv[1]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out = {"replicas": strategy.num_replicas_in_sync}
    cfg = P.DataConfig(batch_size=4, shuffle_buffer=4, with_ids=False)
    train = iter(P.distributed_train_dataset(strategy, P.fold_files(root, "train", 0), cfg))
    batch = next(train)
    out["train_shapes"] = [list(t.shape) for t in strategy.experimental_local_results(batch["cadence"])]
    augmenter = Augmenter(ViewConfig("on", resize=(32, 16)), AugmentConfig(vflip_p=0.5),
                          MixupConfig(mixup_p=0.5))

    @tf.function(jit_compile=True)
    def step(b, s):
        return augmenter(b, s)["image"]

    images = strategy.run(step, args=(batch, tf.constant(1, tf.int64)))
    out["image_shapes"] = [list(t.shape) for t in strategy.experimental_local_results(images)]
    ids = []
    rounds = 0
    eval_cfg = P.DataConfig(batch_size=4)
    for b in P.distributed_eval_dataset(strategy, P.fold_files(root, "val", 0), eval_cfg):
        rounds += 1
        for i, m in zip(strategy.experimental_local_results(b["id"]),
                        strategy.experimental_local_results(b["mask"])):
            ids += [x.decode() for x in i.numpy()[m.numpy()]]
    out["eval_ids"] = ids
    out["eval_rounds"] = rounds
    print("RESULT" + json.dumps(out))
""")


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    written = write_shards(str(tmp_path), folds=2, shards_per_fold=1, per_shard=5)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO}
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert result["replicas"] == 2
    assert result["train_shapes"] == [[2, 6, 273, 256]] * 2
    assert result["image_shapes"] == [[2, 32, 16, 1]] * 2
    val_ids = ids_of(P.fold_files(str(tmp_path), "val", 0), written)
    assert sorted(result["eval_ids"]) == val_ids and len(result["eval_ids"]) == 5
    assert result["eval_rounds"] == 2          # 5 records, global batch 4: two rounds, padded


def test_config_validation():
    with pytest.raises(ValueError, match="batch_size"):
        P.DataConfig(batch_size=0)
    with pytest.raises(ValueError, match="compression"):
        P.DataConfig(compression="zlib")
    with pytest.raises(ValueError, match="cadence_dtype"):
        P.DataConfig(cadence_dtype="int8")


def test_preview_prints_batches_before_and_after_augmentation_and_the_validation_coverage(
        shards, capsys):
    from tfseti.data import preview

    root, _ = shards      # 3 folds x 2 shards x 3 records; fold 0 validates (6 records)
    assert preview.main([root, "--fold", "0", "--batch-size", "4", "--batches", "2",
                         "--mixup", "1.0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "fold 0: 4 train shards, 2 validation shards"
    assert [line.split(":")[0] for line in lines[1:3]] == ["batch 0", "batch 1"]
    assert "image (4, 819, 256, 1)" in lines[1] and "(4 of 4 mixed up)" in lines[1]
    assert lines[3] == ("validation: 6 cadences (3 positive) in 2 batches of 4, last one padded "
                        "to 4 with a mask")

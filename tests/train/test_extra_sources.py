"""``data.extra``: more shard folders in every fold's training, never in its validation."""

import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from harness import write_shard_manifest
from tfseti.data.config import DataConfig
from tfseti.io import records
from tfseti.io.shards import PSEUDO_LABELS_NAME, ShardFolderError, open_shard_folder
from tfseti.train import sources
from train_shards import write_easy_shards


def write_extra(folder, ids, shape=(6, 273, 256), pseudo=True, with_table=True):
    """A pseudo-label folder as tfseti.pseudo leaves it (v2 records, a ``pseudo`` manifest
    section, ``pseudo_labels.csv``), or a plain labelled folder (``pseudo=False``)."""
    os.makedirs(folder, exist_ok=True)
    name = "pseudo-00000-of-00001.tfrec" if pseudo else "train_old-f0-00000-of-00001.tfrec"
    with tf.io.TFRecordWriter(os.path.join(folder, name)) as writer:
        for i, cadence_id in enumerate(ids):
            cadence = np.zeros(shape, np.float16)
            if pseudo:
                writer.write(records.encode_example(cadence_id, cadence, soft_target=0.1 * (i % 10)))
            else:
                writer.write(records.encode_example(cadence_id, cadence, target=i % 2, fold=0))
    doc = write_shard_manifest(folder)
    if pseudo:
        doc["pseudo"] = {"settings": {}}
        with open(os.path.join(folder, "manifest.json"), "w") as handle:
            json.dump(doc, handle)
        if with_table:
            with open(os.path.join(folder, PSEUDO_LABELS_NAME), "w", newline="") as handle:
                table = csv.writer(handle)
                table.writerow(["id", "target", "probability"])
                table.writerows([cadence_id, 0.5, 0.5] for cadence_id in ids)


@pytest.fixture
def labelled(tmp_path):
    folder = tmp_path / "shards"
    write_easy_shards(str(folder), records_per_fold=8, folds=2)
    return open_shard_folder(str(folder))


def test_sources_count_the_extra_records_and_their_share(labelled, tmp_path):
    write_extra(str(tmp_path / "pseudo"), [f"{i:015x}" for i in range(100, 124)])
    extras = sources.open_extras([str(tmp_path / "pseudo")])
    assert extras[0].kind == "pseudo-labelled" and extras[0].records == 24
    share = sources.training_sources(labelled, 0, extras, None)
    assert share.records == 8 and share.extra_records == 24
    assert share.extra_ratio == pytest.approx(24 / 32) and share.records_per_epoch == 32
    fixed = sources.training_sources(labelled, 0, extras, 0.5)
    assert fixed.extra_ratio == 0.5 and fixed.records_per_epoch == 16   # labelled once per epoch
    assert fixed.counts() == {"labelled": 8, "extra": [{"data": str(tmp_path / "pseudo"),
                                                        "kind": "pseudo-labelled", "records": 24}],
                              "extra_ratio": 0.5}
    assert "24 pseudo-labelled records in 1 shard(s); 50% of every batch" in fixed.describe()[0]
    alone = sources.training_sources(labelled, 0, [], None)
    assert alone.extra_ratio == 0.0 and alone.records_per_epoch == 8 and not alone.extra_files


@pytest.mark.parametrize("with_table", [True, False])
def test_an_extra_id_that_is_a_validation_id_is_refused(labelled, tmp_path, with_table):
    validation = ["000000000000003", "000000000000005"]
    write_extra(str(tmp_path / "pseudo"), ["00000000000a001", *validation], with_table=with_table)
    extras = sources.open_extras([str(tmp_path / "pseudo")])
    with pytest.raises(ShardFolderError, match="holds 2 id\\(s\\) of fold 1's validation records"):
        sources.check_disjoint(extras, ["000000000000001", *validation], fold=1)
    sources.check_disjoint(extras, ["000000000000001"], fold=1)     # disjoint: accepted


def test_extra_folders_are_checked_like_every_shard_folder(labelled, tmp_path):
    write_extra(str(tmp_path / "on_only"), ["00000000000a001"], shape=(3, 273, 256),
                pseudo=False)
    extras = sources.open_extras([str(tmp_path / "on_only")])
    assert extras[0].kind == "train_old"
    with pytest.raises(ShardFolderError, match="holds cadences of shape \\[3, 273, 256\\]"):
        sources.training_sources(labelled, 0, extras, None)
    write_extra(str(tmp_path / "broken"), ["00000000000a002"])
    os.remove(tmp_path / "broken" / "manifest.json")
    with pytest.raises(ShardFolderError, match="^data.extra: .*broken: not a shard folder"):
        sources.open_extras([str(tmp_path / "broken")])


def test_extra_settings_are_validated():
    assert DataConfig(extra=("a",), extra_ratio=0.3).extra_ratio == 0.3
    with pytest.raises(ValueError, match="extra_ratio is set but data.extra names no"):
        DataConfig(extra_ratio=0.3)
    for bad in (0.0, 1.0, 1.5, True):
        with pytest.raises(ValueError, match="expected a value in \\(0, 1\\)"):
            DataConfig(extra=("a",), extra_ratio=bad)
    with pytest.raises(ValueError, match="a folder is named twice"):
        DataConfig(extra=("a", "a"))


def test_an_interrupted_pseudo_label_folder_says_which_command_finishes_it(tmp_path):
    folder = tmp_path / "pseudo"
    folder.mkdir()
    (folder / "_progress.json").write_text('{"complete": false, "pseudo": {"settings": {}}}')
    with pytest.raises(ShardFolderError, match="pseudo-labelling interrupted .* rerun the same "
                                               "python -m tfseti.pseudo command"):
        sources.open_extras([str(folder)])


def test_extra_shards_count_into_the_identity_of_a_fold(labelled, tmp_path):
    from tfseti.io.shards import read_manifest
    from tfseti.train import run_folder

    write_extra(str(tmp_path / "pseudo"), [f"{i:015x}" for i in range(100, 104)])
    write_extra(str(tmp_path / "other"), [f"{i:015x}" for i in range(200, 205)])
    plain = run_folder.shards_record(labelled.path, labelled.manifest)
    pseudo = run_folder.shards_record(labelled.path, labelled.manifest,
                                      [read_manifest(str(tmp_path / "pseudo"))])
    other = run_folder.shards_record(labelled.path, labelled.manifest,
                                     [read_manifest(str(tmp_path / "other"))])
    assert pseudo["shards"].startswith("16 records in 2 shards + 4 extra records in 1 shards")
    assert len({plain["shards"], pseudo["shards"], other["shards"]}) == 3
    # data.extra names *where* the extra shards are (as data.data): the digest says which
    assert "data.extra" in run_folder.IGNORED_KEYS
    fold = tmp_path / "run" / "fold0"
    run_folder.write_shards_record(str(fold), pseudo)
    config = {"data": {"extra": ["/somewhere/else"]}, "train": {"fold": 0}}
    (fold / "config.json").write_text(json.dumps(config))
    assert run_folder.check_run_folder(str(tmp_path / "run"), config, pseudo) == []
    with pytest.raises(run_folder.RunFolderConflict, match="data.shards: .*4 extra records"):
        run_folder.check_run_folder(str(tmp_path / "run"), config, other)

"""``tfseti.io.shards``: one owner of shard names, the manifest and the completeness check every
reader makes; explicit globs counted; a corrupt record named by shard file and offset."""

from __future__ import annotations

import ast
import json
import os

import pytest

from tfseti.io import shards as S


def _entry(name: str, records: int, size: int, target: int = 0) -> dict:
    parsed = S.parse_shard_name(name)
    return {"name": name, "fold": parsed["fold"], "index": parsed["index"], "count": parsed["count"],
            "records": records, "classes": {str(target): records} if records else {},
            "bytes": size, "crc32c": "00000000", "skipped": []}


def make_folder(root, shards: dict[str, tuple[int, int]], split="train", folds=2, **extra) -> dict:
    """Files of the given sizes (contents do not matter to the folder check) and their manifest:
    ``shards`` maps name -> (records, bytes)."""
    from tfseti.io.records import SCHEMA_VERSION

    os.makedirs(root, exist_ok=True)
    entries = []
    for name, (records, size) in shards.items():
        with open(os.path.join(root, name), "wb") as handle:
            handle.write(b"x" * size)
        entries.append(_entry(name, records, size, target=-1 if split == "test" else 0))
    doc = {"format": S.FORMAT, "schema_version": SCHEMA_VERSION, "complete": True,
           "params": {"source": "/data", "split": split, "folds": folds, "seed": 0, "shard_mb": 1,
                      "panels": "all", "compression": None},
           "cadence_shape": [6, 273, 256], "cadence_dtype": "float16",
           **S.summarize(entries), "shards": entries, "skipped": [], **extra}
    with open(os.path.join(root, S.MANIFEST_NAME), "w") as handle:
        json.dump(doc, handle)
    return doc


TRAIN = {"train-f0-00000-of-00002.tfrec": (3, 30), "train-f0-00001-of-00002.tfrec": (2, 20),
         "train-f1-00000-of-00001.tfrec": (4, 40)}


def test_names_have_one_owner():
    import tfrecords_tools

    assert S.shard_name("train", 3, 1, 104) == "train-f3-00001-of-00104.tfrec"
    assert S.shard_name("test", -1, 0, 2) == "test-00000-of-00002.tfrec"
    assert S.fold_pattern("train", 3) == "train-f3-*.tfrec"
    assert S.parse_shard_name("test-00001-of-00002.tfrec") == {"split": "test", "fold": -1,
                                                               "index": 1, "count": 2}
    # the converter's package re-exports, it does not redefine
    assert tfrecords_tools.fold_pattern is S.fold_pattern
    assert tfrecords_tools.shard_name is S.shard_name
    assert tfrecords_tools.MANIFEST_NAME == S.MANIFEST_NAME


@pytest.mark.parametrize("module", ["shards", "shard_writer"])
def test_io_layer_imports_nothing_above_it(module):
    path = os.path.join(os.path.dirname(S.__file__), f"{module}.py")
    tree = ast.parse(open(path).read())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in imported if m and m.startswith(("tfseti.", "tfrecords_tools"))
                and not m.startswith("tfseti.io")], imported


def test_nothing_in_tfseti_imports_the_command_line_programs():
    """tfrecords_tools holds the programs convert, verify and snippet-matching; what tfseti needs
    to write shards is tfseti.io.shard_writer, so the dependency runs one way."""
    def modules(node):
        if isinstance(node, ast.ImportFrom):
            return [node.module or ""]
        return [a.name for a in node.names] if isinstance(node, ast.Import) else []

    found = []
    for folder, _, names in os.walk(os.path.dirname(os.path.dirname(S.__file__))):
        for path in (os.path.join(folder, n) for n in names if n.endswith(".py")):
            found += [f"{path}:{node.lineno}" for node in ast.walk(ast.parse(open(path).read()))
                      if any(m.startswith("tfrecords_tools") for m in modules(node))]
    assert not found, found


def test_a_complete_folder_opens_with_its_counts(tmp_path):
    make_folder(str(tmp_path / "ok"), TRAIN)
    folder = S.open_shard_folder(str(tmp_path / "ok"))
    assert folder.num_records == 9 and folder.folds == [0, 1] and folder.split == "train"
    assert folder.cadence_shape == (6, 273, 256) and folder.compression is None
    val = folder.files("val", 0)
    assert [os.path.basename(p) for p in val] == ["train-f0-00000-of-00002.tfrec",
                                                  "train-f0-00001-of-00002.tfrec"]
    assert val[0] == os.path.join(str(tmp_path / "ok"), "train-f0-00000-of-00002.tfrec")
    assert folder.records_in(val) == 5 and folder.records_in(folder.files("train", 0)) == 4
    with pytest.raises(S.NoShardsError, match=r"no train shards for fold 7; the train shards "
                                              r"hold folds \[0, 1\]"):
        folder.files("train", 7)
    with pytest.raises(FileNotFoundError, match="no test-"):
        folder.files("test")
    assert "9 records in 3 train shard(s)" in folder.describe()


def test_a_folder_without_manifest_is_refused(tmp_path):
    interrupted = tmp_path / "interrupted"
    make_folder(str(interrupted), TRAIN)
    os.rename(interrupted / S.MANIFEST_NAME, interrupted / S.PROGRESS_NAME)
    with pytest.raises(S.ShardFolderError, match="conversion interrupted .*rerun the same "
                                                 "tfseti convert command"):
        S.open_shard_folder(str(interrupted))
    os.remove(interrupted / S.PROGRESS_NAME)
    with pytest.raises(S.ShardFolderError, match=r"not a shard folder \(no manifest.json\); it "
                                                 r"holds 3 .tfrec file\(s\).*explicit glob"):
        S.open_shard_folder(str(interrupted))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(S.ShardFolderError, match=r"not a shard folder \(no manifest.json\)$"):
        S.open_shard_folder(str(empty))
    with pytest.raises(FileNotFoundError, match="no such shard folder"):
        S.open_shard_folder(str(tmp_path / "nowhere"))


def test_missing_extra_and_resized_shards_are_each_named(tmp_path):
    root = str(tmp_path / "damaged")
    make_folder(root, TRAIN)
    os.remove(os.path.join(root, "train-f0-00001-of-00002.tfrec"))
    with open(os.path.join(root, "train-f1-00000-of-00001.tfrec"), "ab") as handle:
        handle.write(b"more")
    open(os.path.join(root, "train-f2-00000-of-00001.tfrec"), "wb").write(b"stray")
    with pytest.raises(S.ShardFolderError) as info:
        S.open_shard_folder(root)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{root}: ")
    assert "3 problem(s)" in message
    assert "train-f0-00001-of-00002.tfrec: missing" in message
    assert "train-f1-00000-of-00001.tfrec: 44 bytes, manifest says 40" in message
    assert "train-f2-00000-of-00001.tfrec: in the prefix but not in the manifest" in message
    check = S.check_shard_folder(root)
    assert check.missing == {"train-f0-00001-of-00002.tfrec"} and len(check.problems) == 3


def test_a_manifest_that_does_not_add_up_is_refused(tmp_path):
    gap = str(tmp_path / "gap")
    doc = make_folder(gap, {"train-f0-00001-of-00002.tfrec": (2, 20),
                            "train-f1-00000-of-00001.tfrec": (2, 20)})
    with pytest.raises(S.ShardFolderError, match="fold 0: shard set incomplete"):
        S.open_shard_folder(gap)
    totals = str(tmp_path / "totals")
    make_folder(totals, TRAIN, num_records=10)
    with pytest.raises(S.ShardFolderError, match="manifest num_records is 10, its shard entries "
                                                 "add up to 9"):
        S.open_shard_folder(totals)
    assert doc["num_records"] == 4


def test_no_records_or_an_empty_fold_is_refused(tmp_path):
    nothing = str(tmp_path / "nothing")
    make_folder(nothing, {"test-00000-of-00001.tfrec": (0, 0)}, split="test", folds=0,
                skipped=[{"id": "a", "path": "p", "problem": "NaN"}])
    with pytest.raises(S.ShardFolderError, match=r"lists 0 records: nothing to read \(1 file\(s\) "
                                                 r"left out by --skip-bad"):
        S.open_shard_folder(nothing)
    empty_fold = str(tmp_path / "empty_fold")
    make_folder(empty_fold, {"train-f0-00000-of-00001.tfrec": (3, 30),
                             "train-f1-00000-of-00001.tfrec": (0, 0)})
    with pytest.raises(S.ShardFolderError, match=r"fold\(s\) \[1\] hold no records"):
        S.open_shard_folder(empty_fold)
    no_shards_of_fold = str(tmp_path / "fold_absent")
    make_folder(no_shards_of_fold, {"train-f0-00000-of-00001.tfrec": (3, 30)}, folds=3)
    with pytest.raises(S.ShardFolderError, match=r"fold\(s\) \[1, 2\] hold no records"):
        S.open_shard_folder(no_shards_of_fold)


def _raw_shards(root, n_files=2, per_file=3, size=4000) -> list[str]:
    import tensorflow as tf

    os.makedirs(root, exist_ok=True)
    paths = []
    for f in range(n_files):
        path = os.path.join(root, f"test-{f:05d}-of-{n_files:05d}.tfrec")
        with tf.io.TFRecordWriter(path) as writer:
            for r in range(per_file):
                writer.write(bytes([f * 16 + r]) * size)
        paths.append(path)
    return paths


def test_an_explicit_glob_is_counted(tmp_path):
    root = str(tmp_path / "loose")
    _raw_shards(root, n_files=2, per_file=3)
    selection = S.open_shard_glob(os.path.join(root, "test-*.tfrec"))
    assert [os.path.basename(p) for p in selection.files] == ["test-00000-of-00002.tfrec",
                                                              "test-00001-of-00002.tfrec"]
    assert selection.records == 6
    assert "2 shard(s) matching" in selection.describe() and "6 records (counted" in selection.describe()
    with pytest.raises(FileNotFoundError, match="no shard matches the pattern"):
        S.open_shard_glob(os.path.join(root, "train-*.tfrec"))


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_a_read_error_names_the_shard_and_the_offset(tmp_path, damage):
    import tensorflow as tf

    paths = _raw_shards(str(tmp_path / "bad"), n_files=3, per_file=3)
    victim = paths[1]
    raw = bytearray(open(victim, "rb").read())
    if damage == "flipped":
        raw[len(raw) // 2] ^= 0x01           # inside the second record's payload
    else:
        raw = raw[:-100]
    open(victim, "wb").write(bytes(raw))
    dataset = tf.data.Dataset.from_tensor_slices(paths).interleave(
        tf.data.TFRecordDataset, cycle_length=3, num_parallel_calls=2, deterministic=True)
    with pytest.raises(tf.errors.DataLossError) as info:
        for _ in dataset:
            pass
    assert victim not in str(info.value.message)  # what TensorFlow alone says
    error = S.corrupt_shard_error(info.value, paths)
    assert isinstance(error, S.ShardFolderError)
    message = str(error)
    word = "corrupted" if damage == "flipped" else "truncated"
    assert message.startswith(f"{victim}: corrupt shard, {word} record at byte ")
    assert "\n" not in message and "DataLossError" in message
    with pytest.raises(S.CorruptShardError, match=f"{victim}: unreadable shard"):
        S.count_records(paths)

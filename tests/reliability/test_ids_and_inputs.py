"""Ids checked by every reader, published files allow-listed, inputs checked before any work.

Every reader of cadence ids (convert, verify, snippet matching, explain, pseudo, predict) refuses
an id such as ``../../x`` with one ``error:`` line and writes nothing: a cadence is planted where
the traversal would read (``A/x.npy`` for ``--data A/data``), so a reader without the check would
have found it, and the tests look for the file it would have written (``B/x.npy`` for ``--out
B/out``). Publishing stages a SavedModel's own files only, never a stray ``kaggle.json``. A run with
an unfinished fold is refused by predict and scan, a sample submission without ids by predict, and
a missing ``--unlabelled`` by the noisy-student loop before its teacher trains.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from report.report_helpers import shared_tiny_run
from harness import random_cadence, write_kaggle_dir

from tfseti.io.kaggle import CadenceIdError, KaggleDataset, cadence_relpath, check_ids

BAD_ID = "../../x"


def one_error_line(capsys, prefix: str = "error: ") -> str:
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    return lines[0]


def written(folder) -> list[str]:
    """Every file under ``folder`` but an output lock file (``OUT/.tfseti.lock``: who may write
    there, taken before the inputs are read by the commands that lock their output)."""
    found = []
    for parent, _, names in os.walk(folder):
        found += [os.path.join(parent, n) for n in names if not n.endswith(".lock")]
    return found


def traversal_setup(tmp_path, csv: str, n_train: int = 4, n_test: int = 2):
    """``A/data`` (Kaggle layout) whose ``csv`` lists ``../../x`` last, a cadence at ``A/x.npy``
    (where that id reads from) and the paths ``B/out`` and ``B/x.npy`` (where it would write)."""
    data = tmp_path / "A" / "data"
    data.mkdir(parents=True)
    write_kaggle_dir(str(data), n_train=n_train, n_test=n_test)
    with open(data / csv, "a") as handle:
        handle.write(f"{BAD_ID},{'0' if csv == 'train_labels.csv' else '0.5'}\n")
    np.save(tmp_path / "A" / "x.npy", random_cadence(np.random.default_rng(1)))
    # The traversal really lands there: what the readers must refuse, not a harmless name.
    assert os.path.normpath(data / "train" / BAD_ID[0] / f"{BAD_ID}.npy") == str(tmp_path / "A" / "x.npy")
    line = sum(1 for _ in open(data / csv))  # the bad row's line (1-based, header included)
    return data, tmp_path / "B" / "out", tmp_path / "B" / "x.npy", line


def assert_refused(message: str, source, line: int | None):
    where = f"{source} line {line}" if line is not None else str(source)
    assert f"{where}: id '{BAD_ID}' is not a cadence id, expected 15 lowercase hex" in message, message


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, worker_id):
    """The shared tiny trained run (2 folds, plain CNN, 6-panel SavedModels)."""
    return shared_tiny_run(tmp_path_factory, worker_id)


# -- the one id check ---------------------------------------------------------------------------
def test_check_ids_names_the_source_line_and_first_bad_id():
    good = ["0123456789abcde", "0123456789ab"]
    assert check_ids(iter(good), "x.csv") == good
    with pytest.raises(CadenceIdError) as caught:
        check_ids([good[0], BAD_ID, "ABCDEF012345678", good[1]], "x.csv", first_line=2)
    assert str(caught.value) == (f"x.csv line 3: id '{BAD_ID}' is not a cadence id, expected 15 "
                                 f"lowercase hex characters (12 in old_leaky_data) (2 of the 4 "
                                 f"ids are malformed)")
    # A trailing newline passes re.match with '$'; it must not pass as an id.
    for bad in ("0123456789abcde\n", "", None, 123456789012345, "0123456789abcdef"):
        with pytest.raises(CadenceIdError):
            check_ids([bad], "--ids")


def test_the_path_builder_refuses_a_bad_id_whoever_forgot_the_check(tmp_path):
    with pytest.raises(CadenceIdError, match="refused as a file name under train/"):
        cadence_relpath("train", BAD_ID)
    data, _, _, _ = traversal_setup(tmp_path, "train_labels.csv")
    dataset = KaggleDataset(str(data), "train")
    with pytest.raises(CadenceIdError):   # not a CadenceError: nobody may skip it as "missing"
        dataset.load(BAD_ID)
    with pytest.raises(CadenceIdError):
        dataset.path(BAD_ID)


# -- every reader -------------------------------------------------------------------------------
def test_convert_refuses_a_traversal_id(tmp_path, capsys):
    from tfrecords_tools.convert import main

    data, out, _, line = traversal_setup(tmp_path, "sample_submission.csv")
    assert main(["--data", str(data), "--out", str(out), "--split", "test", "--workers", "1",
                 "--no-progress"]) == 2   # a refused input, as every command
    assert_refused(one_error_line(capsys), data / "sample_submission.csv", line)
    assert written(out) == []


def test_verify_reports_a_record_with_a_traversal_id(tmp_path, capsys):
    import tensorflow as tf

    from harness import write_shard_manifest
    from tfrecords_tools.verify import main
    from tfseti.io.records import encode_example
    from tfseti.io.shards import shard_name

    rng = np.random.default_rng(0)
    folder = tmp_path / "shards"
    folder.mkdir()
    with tf.io.TFRecordWriter(str(folder / shard_name("test", -1, 0, 1))) as writer:
        writer.write(encode_example("0123456789abcde", random_cadence(rng)))
        writer.write(encode_example(BAD_ID, random_cadence(rng)))
    write_shard_manifest(folder)
    assert main([str(folder), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"record 1 has an invalid id '{BAD_ID}'" in err, err


def test_snippet_matching_neither_reads_nor_writes_outside_its_folders(tmp_path, capsys):
    from tfrecords_tools.snippet_matching import main

    data, out, target, line = traversal_setup(tmp_path, "train_labels.csv")
    assert main(["--data", str(data), "--out", str(out), "--workers", "1"]) == 2
    assert_refused(one_error_line(capsys), data / "train_labels.csv", line)
    assert not target.exists() and written(out) == []


@pytest.mark.slow
def test_explain_refuses_a_traversal_id(tiny, tmp_path, capsys):
    from tfseti.explain.__main__ import main

    data, out, target, _ = traversal_setup(tmp_path, "train_labels.csv")
    # --fold 0: without the check the id would be looked up in --data (A/x.npy) by fold 0's net.
    assert main(["--model", tiny["run"], "--fold", "0", "--ids", BAD_ID, "--data", str(data),
                 "--out", str(out)]) == 2
    assert_refused(one_error_line(capsys), "--ids", None)
    assert not target.exists() and not out.exists()


@pytest.mark.slow
def test_predict_refuses_a_traversal_id(tiny, tmp_path, capsys):
    from tfseti.predict.__main__ import main

    data, out, _, line = traversal_setup(tmp_path, "sample_submission.csv")
    submission = out / "submission.csv"
    assert main(["--model", tiny["run"], "--data", str(data), "--out", str(submission),
                 "--no-progress"]) == 2
    assert_refused(one_error_line(capsys), data / "sample_submission.csv", line)
    assert written(out) == []


@pytest.mark.slow
def test_pseudo_refuses_a_traversal_id_before_touching_out(tiny, tmp_path, capsys):
    from tfseti.pseudo.__main__ import main

    data, out, target, line = traversal_setup(tmp_path, "sample_submission.csv")
    assert main(["--teacher", tiny["run"], "--data", str(data), "--out", str(out),
                 "--no-progress"]) == 2
    assert_refused(one_error_line(capsys), data / "sample_submission.csv", line)
    assert not target.exists() and written(out) == []   # not even its progress file


# -- a test list without ids --------------------------------------------------------------------
@pytest.mark.slow
def test_predict_refuses_a_header_only_sample_submission(tiny, tmp_path, capsys):
    from tfseti.predict.__main__ import main

    data = tmp_path / "data"
    data.mkdir()
    write_kaggle_dir(str(data), n_train=2, n_test=2)
    (data / "sample_submission.csv").write_text("id,target\n")
    submission = tmp_path / "submission.csv"
    assert main(["--model", tiny["run"], "--data", str(data), "--out", str(submission),
                 "--no-progress"]) == 2
    assert one_error_line(capsys) == (f"error: {data / 'sample_submission.csv'}: no ids after "
                                      f"the header, expected one 'id,target' row per test cadence")
    assert not submission.exists()


# -- unfinished folds ---------------------------------------------------------------------------
def unfinished_run(tiny, tmp_path, keep_saved_model: bool = False) -> str:
    """A copy of the tiny run whose fold1 was killed mid-training: its backup/ still there (and
    no SavedModel, unless ``keep_saved_model``: killed while finishing)."""
    run = tmp_path / "run"
    shutil.copytree(tiny["run"], run)
    fold1 = run / "fold1"
    for name in ("result.json", "oof.csv"):
        (fold1 / name).unlink()
    if not keep_saved_model:
        shutil.rmtree(fold1 / "saved_model")
    (fold1 / "backup").mkdir()
    (fold1 / "backup" / "checkpoint").write_text("model_checkpoint_path: \"ckpt-1\"\n")
    return str(run)


def assert_unfinished_fold1(message: str) -> None:
    assert "unfinished fold (fold1: its backup/ is still there: training, or interrupted)" in message
    assert "rerun the same python -m tfseti.train command to finish it" in message


@pytest.mark.slow
def test_predict_refuses_a_run_with_an_unfinished_fold(tiny, tmp_path, capsys):
    from tfseti.predict.__main__ import main

    run = unfinished_run(tiny, tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    write_kaggle_dir(str(data), n_train=2, n_test=2)
    submission = tmp_path / "submission.csv"
    assert main(["--model", run, "--data", str(data), "--out", str(submission),
                 "--no-progress"]) == 2
    assert_unfinished_fold1(one_error_line(capsys))
    assert not submission.exists()


@pytest.mark.slow
def test_scan_refuses_a_run_with_an_unfinished_fold(tiny, tmp_path, capsys):
    from tfseti.scan.__main__ import main

    run = unfinished_run(tiny, tmp_path)
    out = tmp_path / "scan"
    cadence = ",".join(str(tmp_path / f"obs{i}.h5") for i in range(6))  # not read: refused first
    assert main(["--cadence", cadence, "--model", run, "--out", str(out), "--no-progress"]) == 2
    assert_unfinished_fold1(one_error_line(capsys))
    assert written(out) == []


@pytest.mark.slow
def test_a_fold_killed_while_finishing_is_refused_however_it_is_named(tiny, tmp_path):
    from tfseti.predict.models import resolve_model_paths

    run = unfinished_run(tiny, tmp_path, keep_saved_model=True)
    for spec in (run, f"{run}/fold1", f"{run}/fold1/saved_model"):
        with pytest.raises(ValueError, match=r"unfinished fold \(fold1: its backup/"):
            resolve_model_paths(spec)
    # The finished fold beside it is still usable on its own.
    assert resolve_model_paths(f"{run}/fold0") == [f"{run}/fold0/saved_model"]


# -- publish: an allow-list, never a whole tree -------------------------------------------------
@pytest.mark.slow
def test_publish_leaves_a_stray_kaggle_json_out_of_the_saved_model(tiny, tmp_path):
    from tfseti.publish.stage import stage_run

    run = tmp_path / "run"
    shutil.copytree(tiny["run"], run)
    saved_model = run / "fold0" / "saved_model"
    (saved_model / "assets").mkdir(exist_ok=True)
    for stray in (saved_model / "assets" / "kaggle.json", saved_model / "variables" / "kaggle.json"):
        stray.write_text('{"username": "someone", "key": "0123456789abcdef"}')
    lines = []
    staged = stage_run(str(run), str(tmp_path / "staging"), "someone/tfseti-allow-list",
                       log=lines.append)
    names = [name for name, _ in staged.files]
    assert not [n for n in names if "kaggle.json" in n], names
    for fold in (0, 1):   # exactly a SavedModel's files, and it loads (stage_run loads it)
        files = sorted(n[len(f"fold{fold}/saved_model/"):] for n in names
                       if n.startswith(f"fold{fold}/saved_model/"))
        assert files[:2] == ["fingerprint.pb", "saved_model.pb"], files
        assert files[-1] == "variables/variables.index"
        assert all(f.startswith("variables/variables.data-") for f in files[2:-1]) and files[2:-1]
    note = [line for line in lines if "left out" in line]
    assert note == ["note: left out 2 file(s) that are not part of a SavedModel: "
                    "fold0/saved_model/assets/kaggle.json, "
                    "fold0/saved_model/variables/kaggle.json"], lines


# -- the noisy-student loop checks its inputs before training -----------------------------------
@pytest.mark.slow
def test_noisy_student_checks_unlabelled_before_training(tiny, tmp_path, capsys):
    from tfseti.noisy_student import main

    out = tmp_path / "loop"
    base = ["--config", "cpu_demo", "--data", tiny["shards"], "--out", str(out), "--fold", "0",
            "--strategy", "cpu", "--no-progress"]
    missing = tmp_path / "missing"
    assert main([*base, "--unlabelled", str(missing)]) == 2
    message = one_error_line(capsys)
    assert message.startswith("error: --unlabelled: ") and str(missing) in message, message
    assert written(out) == []   # no noisy_student.json, no round0/: nothing trained

    data, _, _, line = traversal_setup(tmp_path, "sample_submission.csv")
    assert main([*base, "--unlabelled", str(data)]) == 2
    assert_refused(one_error_line(capsys), data / "sample_submission.csv", line)
    assert written(out) == []

    assert main([*base, "--data", str(tmp_path / "no_shards"), "--unlabelled", str(data)]) == 2
    assert one_error_line(capsys).startswith("error: --data: ")
    assert written(out) == []

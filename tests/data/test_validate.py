"""tfseti.data.validate: one test per kind of problem, each building the bad file or csv for real."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import fsspec
import numpy as np
import pandas as pd
import pytest

from harness import random_cadence, write_kaggle_dir
from tfseti.data.validate import main, validate
from tfseti.io.kaggle import cadence_relpath


@pytest.fixture
def dataset(tmp_path):
    """A small clean Kaggle-layout folder: 6 train (2 positive) and 3 test cadences."""
    root = tmp_path / "kaggle"
    root.mkdir()
    frames = write_kaggle_dir(str(root), n_train=6, n_test=3, positive_rate=0.34)
    return root, frames


def npy_path(root, split, cadence_id) -> str:
    return os.path.join(root, *cadence_relpath(split, cadence_id).split("/"))


def only_problem(report):
    """The single problem of a report; fails listing them all when there is not exactly one."""
    assert len(report.problems) == 1, [str(p) for p in report.problems]
    return report.problems[0]


def test_clean_folder_has_no_problems_and_counts_labels(dataset):
    root, frames = dataset
    report = validate(root, workers=2)
    assert report.ok and not report.stopped_early
    by_split = {s.split: s for s in report.splits}
    assert set(by_split) == {"train", "test"}
    assert by_split["train"].files_checked == 6 and by_split["test"].files_checked == 3
    assert by_split["train"].positives == int(frames["train"].target.sum()) == 2
    assert by_split["train"].negatives == 4
    assert "0 problems" in report.summary_lines()


@pytest.mark.parametrize("bad_array, expectation", [
    (np.zeros((6, 273, 255), np.float16), "shape is (6, 273, 255), expected (6, 273, 256)"),
    (np.zeros((6, 273, 256), np.float32), "dtype is float32, expected float16"),
    (np.zeros((3, 273, 256), np.int8), "expected float16"),
], ids=["shape", "dtype", "int-and-shape"])
def test_wrong_array_is_reported_by_file(dataset, bad_array, expectation):
    root, frames = dataset
    path = npy_path(root, "train", frames["train"].id[1])
    np.save(path, bad_array)
    problem = only_problem(validate(root, workers=2))
    assert problem.location == path and problem.kind == "content"
    assert expectation in problem.message


@pytest.mark.parametrize("value, counts", [(np.nan, "2 NaN and 0 Inf"), (np.inf, "0 NaN and 2 Inf")])
def test_non_finite_values_are_reported(dataset, value, counts):
    root, frames = dataset
    path = npy_path(root, "test", frames["test"].id[0])
    cadence = random_cadence(np.random.default_rng(1))
    cadence[4, 10, 20] = cadence[0, 0, 0] = value
    np.save(path, cadence)
    problem = only_problem(validate(root, workers=2))
    assert problem.location == path
    assert f"holds {counts} values, expected only finite values" in problem.message


def test_truncated_file_is_reported(dataset):
    root, frames = dataset
    path = npy_path(root, "train", frames["train"].id[0])
    with open(path, "r+b") as handle:
        handle.truncate(5000)
    problem = only_problem(validate(root, workers=2))
    assert problem.location == path
    assert "truncated .npy file" in problem.message and "838656 data bytes" in problem.message


def test_file_that_is_not_npy_is_reported(dataset):
    root, frames = dataset
    path = npy_path(root, "train", frames["train"].id[2])
    pathlib.Path(path).write_text("id,target\nthis is a csv saved under the wrong name\n")
    problem = only_problem(validate(root, workers=2))
    assert problem.location == path
    assert "not a .npy file" in problem.message
    assert "expected a .npy file holding float16 (6, 273, 256)" in problem.message


class _TouchOnUnpickle:
    """Unpickling this object creates a marker file: proof that validation never unpickles."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_pickled_object_array_is_refused_without_unpickling(dataset, tmp_path):
    root, frames = dataset
    path = npy_path(root, "train", frames["train"].id[3])
    marker = tmp_path / "unpickled"
    array = np.empty((1,), dtype=object)
    array[0] = _TouchOnUnpickle(str(marker))
    np.save(path, array, allow_pickle=True)
    problem = only_problem(validate(root, workers=2))
    assert problem.location == path
    assert "pickled object array" in problem.message and "never unpickled" in problem.message
    assert not marker.exists()


def test_csv_id_without_file_names_the_csv_line_and_the_expected_path(dataset):
    root, frames = dataset
    missing = frames["train"].id[4]
    os.remove(npy_path(root, "train", missing))
    problem = only_problem(validate(root, workers=2))
    assert problem.location == f"{root / 'train_labels.csv'} line 6"  # header is line 1
    assert problem.message == f"id {missing} has no file, expected {npy_path(root, 'train', missing)}"


def test_file_without_csv_row_is_reported(dataset):
    root, _ = dataset
    extra = "0123456789abcde"
    path = npy_path(root, "test", extra)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, random_cadence(np.random.default_rng(2)))
    problem = only_problem(validate(root, workers=2))
    assert problem.location == path and problem.kind == "unlisted_file"
    assert f"no row for id {extra} in {root / 'sample_submission.csv'}" in problem.message


def test_duplicate_csv_id_is_reported_with_both_lines(dataset):
    root, frames = dataset
    train = frames["train"]
    pd.concat([train, train.iloc[[1]]]).to_csv(root / "train_labels.csv", index=False)
    problem = only_problem(validate(root, workers=2))
    assert problem.location == f"{root / 'train_labels.csv'} line 8"
    assert f"duplicate id {train.id[1]} (first on line 3)" in problem.message


@pytest.mark.parametrize("split, csv, value, expectation", [
    ("train", "train_labels.csv", "2", "expected 0 or 1"),
    ("train", "train_labels.csv", "0.5", "expected 0 or 1"),
    ("train", "train_labels.csv", "", "expected 0 or 1"),
    ("test", "sample_submission.csv", "high", "expected a finite number"),
])
def test_bad_label_value_is_reported(dataset, split, csv, value, expectation):
    root, frames = dataset
    frame = frames[split].astype({"target": object})
    frame.loc[1, "target"] = value
    frame.to_csv(root / csv, index=False)
    problem = only_problem(validate(root, workers=2))
    assert problem.location == f"{root / csv} line 3" and problem.kind == "label"
    assert f"for id {frame.id[1]}, {expectation}" in problem.message


def test_integer_label_is_shown_as_written(dataset):
    root, frames = dataset
    frame = frames["train"].copy()
    frame.loc[1, "target"] = 2  # the column stays int64: no numpy repr in the message
    frame.to_csv(root / "train_labels.csv", index=False)
    problem = only_problem(validate(root, split="train", workers=2))
    assert problem.message == f"target 2 for id {frame.id[1]}, expected 0 or 1"


def test_empty_csv_names_the_expected_header(dataset):
    root, _ = dataset
    (root / "train_labels.csv").write_text("")
    problem = only_problem(validate(root, split="train", workers=2))
    assert problem.location == str(root / "train_labels.csv") and problem.kind == "csv"
    assert problem.message == "the file is empty, expected a header line 'id,target' and one row " \
                              "per cadence"


def test_malformed_csv_id_is_reported(dataset):
    root, frames = dataset
    frame = frames["test"].copy()
    frame.loc[2, "id"] = "ABCDEF012345678"  # upper case
    frame.to_csv(root / "sample_submission.csv", index=False)
    problems = validate(root, workers=2).problems
    # The renamed row's old file is now unlisted: that is a second, separate problem.
    assert [p.kind for p in problems] == ["id", "unlisted_file"]
    assert problems[0].location == f"{root / 'sample_submission.csv'} line 4"
    assert "malformed id 'ABCDEF012345678', expected 15 lowercase hex" in problems[0].message


def test_malformed_file_name_is_reported(dataset):
    root, _ = dataset
    path = os.path.join(root, "train", "x", "not-an-id.npy")
    os.makedirs(os.path.dirname(path))
    np.save(path, random_cadence(np.random.default_rng(3)))
    problem = only_problem(validate(root, workers=2))
    assert problem.location == path
    assert "file name 'not-an-id' is not a valid id, expected 15 lowercase hex" in problem.message


def test_file_in_wrong_subfolder_is_one_problem(dataset):
    root, frames = dataset
    cadence_id = frames["train"].id[0]
    wrong_sub = "f" if cadence_id[0] != "f" else "0"
    wrong = os.path.join(root, "train", wrong_sub, f"{cadence_id}.npy")
    os.makedirs(os.path.dirname(wrong), exist_ok=True)
    shutil.move(npy_path(root, "train", cadence_id), wrong)
    problem = only_problem(validate(root, workers=2))
    assert problem.location == wrong
    assert problem.message == f"in the wrong folder, expected {npy_path(root, 'train', cadence_id)}"


def test_stray_file_is_reported(dataset):
    root, _ = dataset
    stray = root / "test" / "notes.txt"
    stray.write_text("hello")
    problem = only_problem(validate(root, workers=2))
    assert problem.location == str(stray)
    assert "unexpected file, expected only test/<id[0]>/<id>.npy files" in problem.message


def test_missing_and_malformed_csv_are_reported(dataset):
    root, _ = dataset
    os.remove(root / "train_labels.csv")
    (root / "sample_submission.csv").write_text("identifier,score\nabc,0.5\n")
    problems = validate(root, workers=2).problems
    assert [(p.location, p.kind) for p in problems] == [
        (str(root / "train_labels.csv"), "csv"), (str(root / "sample_submission.csv"), "csv")]
    assert "label file not found" in problems[0].message
    assert "missing column(s) ['id', 'target'], expected header 'id,target'" in problems[1].message


def test_csv_rows_longer_than_the_header_are_a_parse_error(dataset):
    root, _ = dataset
    (root / "train_labels.csv").write_text("id,target\n0123456789abcde,1,7\n")
    problem = only_problem(validate(root, split="train", workers=2))
    assert problem.location == str(root / "train_labels.csv") and problem.kind == "csv"
    assert problem.message.startswith("cannot parse csv (")


def test_missing_split_folder_is_one_problem(dataset):
    root, _ = dataset
    shutil.rmtree(root / "test")
    problem = only_problem(validate(root, workers=2))
    assert problem.location == str(root / "test")
    assert "folder not found, expected the 3 .npy files listed in" in problem.message


def test_missing_root_and_empty_root(tmp_path):
    problem = only_problem(validate(tmp_path / "nowhere"))
    assert problem.location == str(tmp_path / "nowhere") and "folder not found" in problem.message
    problem = only_problem(validate(tmp_path))
    assert "no Kaggle layout found" in problem.message


def test_split_option_checks_only_that_split(dataset):
    root, frames = dataset
    np.save(npy_path(root, "test", frames["test"].id[0]), np.zeros(3, np.float16))
    assert validate(root, split="train").ok
    assert [s.split for s in validate(root, split="train").splits] == ["train"]
    assert only_problem(validate(root, split="test")).split == "test"


def test_old_leaky_data_is_checked_with_12_character_ids(dataset):
    root, _ = dataset
    old = root / "old_leaky_data"
    rng = np.random.default_rng(4)
    ids = ["0a1b2c3d4e5f", "ffeeddccbbaa"]
    for cadence_id in ids:
        path = old / "train_old" / cadence_id[0] / f"{cadence_id}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, random_cadence(rng))
    pd.DataFrame({"id": ids, "target": [1, 3]}).to_csv(old / "train_labels_old.csv", index=False)
    report = validate(root, workers=2)
    assert [s.split for s in report.splits] == ["train", "test", "train_old"]
    assert report.splits[2].files_checked == 2 and report.splits[2].positives == 1
    problem = only_problem(report)
    assert problem.location == f"{old / 'train_labels_old.csv'} line 3"
    assert "target 3 for id ffeeddccbbaa, expected 0 or 1" in problem.message


def test_max_errors_stops_early_and_says_so(dataset):
    root, frames = dataset
    for cadence_id in frames["train"].id[:4]:
        np.save(npy_path(root, "train", cadence_id), np.zeros(2, np.float16))
    seen = []
    report = validate(root, max_errors=2, workers=2, on_problem=seen.append)
    assert len(report.problems) == 2 and report.stopped_early and seen == report.problems
    # In file order: the first two train files.
    expected = sorted(npy_path(root, "train", i) for i in frames["train"].id[:4])[:2]
    assert [p.location for p in report.problems] == expected
    assert "stopped early after 2 problems (--max-errors 2)" in "\n".join(report.summary_lines())
    assert len(validate(root, workers=2).problems) == 4


def test_fsspec_url_is_validated_and_named_by_url(dataset, tmp_path):
    root, frames = dataset
    memory = fsspec.filesystem("memory")
    base = f"/validate-{tmp_path.name}"
    memory.put(str(root), base, recursive=True)
    bad = cadence_relpath("train", frames["train"].id[2])
    memory.pipe(f"{base}/{bad}", b"\x93NUMPY garbage")
    try:
        report = validate(f"memory://{base}", workers=2)
        problem = only_problem(report)
        assert problem.location == f"memory://{base}/{bad}"
        assert "corrupt .npy header" in problem.message
        assert [s.files_checked for s in report.splits] == [6, 3]
    finally:
        memory.rm(base, recursive=True)


def test_cli_in_process_output_and_exit_codes(dataset, capsys):
    root, frames = dataset
    assert main([str(root), "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 problems"
    path = npy_path(root, "test", frames["test"].id[1])
    np.save(path, np.ones((6, 273, 256), np.float64))
    assert main([str(root), "--no-progress", "--workers", "1"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}: dtype is float64, expected float16"
    assert out[-1] == "problems found: 1 (test: 1)"


def test_cli_refuses_fewer_than_one_worker(dataset, capsys):
    with pytest.raises(SystemExit) as caught:
        main([str(dataset[0]), "--workers", "0"])
    assert caught.value.code == 2
    assert "argument --workers: expected an integer >= 1, got 0" in capsys.readouterr().err


def test_cli_subprocess_clean_then_one_corrupt_file(dataset):
    root, frames = dataset

    def run(*args):
        return subprocess.run([sys.executable, "-m", "tfseti.data.validate", str(root), *args],
                              capture_output=True, text=True, timeout=120)

    clean = run()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 problems" in clean.stdout
    assert clean.stderr == ""  # stderr is a pipe, not a terminal: no progress bar

    corrupt = npy_path(root, "train", frames["train"].id[5])
    with open(corrupt, "r+b") as handle:
        handle.seek(200)
        handle.write(b"\xff" * 16)  # float16 0xffff is NaN
    other = npy_path(root, "test", frames["test"].id[0])
    with open(other, "r+b") as handle:
        handle.truncate(100)
    result = run("--max-errors", "1", "--no-progress")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{corrupt}: holds 8 NaN and 0 Inf values")
    assert other not in result.stdout
    assert "stopped early after 1 problem (--max-errors 1)" in result.stdout

"""``python -m tfseti.report`` refuses what is not a run folder with one clear error and exit 2
(no training needed: the folders here are written by hand in the trainer's format)."""

from __future__ import annotations

import json
import os

import pytest

from tfseti.report.__main__ import main
from tfseti.report.runs import RunFolderError, read_run


def write_fold(folder, oof_text="id,fold,target,score\naaa,0,1,0.5\nbbb,0,0,-0.5\n",
               config=None):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as handle:
        json.dump(config or {"name": "hand", "data": {"data": None}, "train": {"fold": 0}}, handle)
    with open(os.path.join(folder, "result.json"), "w") as handle:
        json.dump({"best_val_auc": 1.0, "precision": "float32", "replicas": 1}, handle)
    with open(os.path.join(folder, "oof.csv"), "w") as handle:
        handle.write(oof_text)
    return str(folder)


def run_main(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def test_missing_empty_and_file_run_dirs_exit_2(tmp_path, capsys):
    code, err = run_main([str(tmp_path / "nope")], capsys)
    assert code == 2 and f"{tmp_path / 'nope'}: not found, expected a run folder" in err
    (tmp_path / "empty").mkdir()
    code, err = run_main([str(tmp_path / "empty")], capsys)
    assert code == 2 and "empty: no training run found, expected fold<K>/ folders" in err
    (tmp_path / "file.txt").write_text("x")
    code, err = run_main([str(tmp_path / "file.txt")], capsys)
    assert code == 2 and "file.txt: is a file, expected a run folder" in err
    # A fold folder missing one of its files is not a run.
    fold = write_fold(tmp_path / "run" / "fold0")
    os.remove(os.path.join(fold, "result.json"))
    code, err = run_main([str(tmp_path / "run")], capsys)
    assert code == 2 and "no training run found" in err


def test_a_remote_run_dir_needs_a_local_out(capsys):
    code, err = run_main(["gs://some-bucket/run"], capsys)
    assert code == 2
    assert "gs://some-bucket/run: a remote run folder needs a local output folder (--out DIR)" in err


@pytest.mark.parametrize("oof_text, problem", [
    ("id,fold,score\naaa,0,0.5\n", "missing column(s) ['target'], expected header 'id,fold,target,score'"),
    ("id,fold,target,score\naaa,0,2,0.5\n", "target value '2', expected 0 or 1"),
    ("id,fold,target,score\naaa,0,1,nan\n", "score column holds non-numeric or non-finite values, expected finite log-odds"),
    ("id,fold,target,score\naaa,0,1,0.5\naaa,0,0,0.1\n", "id 'aaa' appears more than once"),
    ("id,fold,target,score\n", "no rows, expected one row per validation cadence"),
])
def test_bad_oof_csv_is_named_with_the_problem(tmp_path, oof_text, problem):
    fold = write_fold(tmp_path / "fold0", oof_text=oof_text)
    with pytest.raises(RunFolderError) as info:
        read_run(fold)
    assert str(info.value) == f"{os.path.join(fold, 'oof.csv')}: {problem}"


def test_bad_json_and_missing_truth_exit_2(tmp_path, capsys):
    fold = write_fold(tmp_path / "fold0")
    with open(os.path.join(fold, "result.json"), "w") as handle:
        handle.write("{not json")
    code, err = run_main([fold], capsys)
    assert code == 2 and f"{os.path.join(fold, 'result.json')}: not valid JSON" in err
    fold = write_fold(tmp_path / "fold1")
    code, err = run_main([fold, "--truth", str(tmp_path / "truth.csv")], capsys)
    assert code == 2 and f"{tmp_path / 'truth.csv'}: truth file not found (--truth)" in err
    (tmp_path / "truth.csv").write_text("id,target\naaa,1\n")
    code, err = run_main([fold, "--truth", str(tmp_path / "truth.csv")], capsys)
    assert code == 2 and "truth.csv: missing column(s) ['family', 'snr']" in err


def test_folds_sharing_an_id_without_a_joined_oof_are_refused(tmp_path):
    write_fold(tmp_path / "run" / "fold0")
    write_fold(tmp_path / "run" / "fold1", config={"name": "hand", "train": {"fold": 1}},
               oof_text="id,fold,target,score\naaa,1,1,0.5\n")
    with pytest.raises(RunFolderError, match="id 'aaa' is in the oof.csv of more than one fold"):
        read_run(str(tmp_path / "run"))

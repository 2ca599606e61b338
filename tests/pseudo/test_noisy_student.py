"""The noisy-student loop end to end (tiny), killed between and within rounds, and the
pseudo-label command on its teacher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from harness import REPO, subprocess_env
from tfseti.io.records import parse_example
from tfseti.io.shards import open_shard_folder
from tfseti.pseudo.__main__ import main as pseudo_main

# plain_cnn_s on a 32 x 32 view, 4 steps per epoch: the loop is under test, not learning.
TINY = ["view.resize=[32, 32]", "model.name=plain_cnn_s", "train.epochs=2",
        "train.steps_per_epoch=4", "train.batch_per_replica=4", "train.steps_per_execution=1",
        "train.warmup_epochs=0", "augment.off_shuffle_p=0.0", "train.jit_compile=false"]


def loop_argv(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "tfseti.noisy_student", "--config", "cpu_demo",
            "--data", str(data / "shards"), "--unlabelled", str(data / "kaggle"),
            "--rounds", "2", "--fold", "0", "--out", str(out), "--tta", "flips",
            "--extra-ratio", "0.5", "--strategy", "cpu", "--backup-every", "2", "--no-progress",
            "--student", "model.options.dropout=0.5", "--last", "train.learning_rate=0.0005",
            *TINY]


def processes_naming(text: str) -> list[int]:
    """Pids of the processes whose command line holds ``text`` (a loop's children)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if text.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def run_until(argv, condition, timeout=300) -> None:
    """Start the loop, SIGKILL it as soon as ``condition()`` holds, and check that no child of it
    survives (they die with the loop)."""
    process = subprocess.Popen(argv, cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the loop ended before it could be killed"
        assert time.monotonic() < deadline, "the kill point was not reached in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    out = argv[argv.index("--out") + 1]
    deadline = time.monotonic() + 30
    while processes_naming(out) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_naming(out), "a child of the killed loop is still running"


def backed_up(fold_dir: Path) -> bool:
    index = fold_dir / "backup" / "checkpoint"
    return index.exists() and "all_model_checkpoint_paths" in index.read_text()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ns_data")
    env = subprocess_env()
    for argv in (["tfseti.synth", "--out", str(root / "kaggle"), "--n-train", "48", "--n-test",
                  "24", "--positive-rate", "0.5", "--snr", "30:60", "--no-rfi", "--seed", "3",
                  "--workers", "1", "--no-progress"],
                 ["tfrecords_tools.convert", "--data", str(root / "kaggle"), "--out",
                  str(root / "shards"), "--folds", "2", "--no-progress"]):
        done = subprocess.run([sys.executable, "-m", *argv], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    return root


@pytest.fixture(scope="module")
def finished_loop(data, tmp_path_factory) -> tuple[Path, str]:
    """Two rounds, killed once between rounds (the teacher's pseudo-labels written) and once
    inside round 1's training (a backup written), then run to the end."""
    out = tmp_path_factory.mktemp("ns") / "loop"
    argv = loop_argv(data, out)
    run_until(argv, lambda: (out / "pseudo0" / "manifest.json").exists())
    assert not (out / "round1" / "fold0" / "result.json").exists()
    run_until(argv, lambda: backed_up(out / "round1" / "fold0"))
    assert not (out / "round1" / "fold0" / "result.json").exists()
    done = subprocess.run(argv, cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, done.stdout


@pytest.mark.heavy
@pytest.mark.slow
def test_the_loop_resumes_after_kills_and_reports_every_round(finished_loop):
    out, stdout = finished_loop
    assert "round 0 (teacher): finished in" in stdout and "skipped" in stdout
    assert f"pseudo-labels in {out / 'pseudo0'}, skipped" in stdout
    assert "resuming from step" in stdout                  # round 1 continued from its backup
    rows = json.loads((out / "rounds.json").read_text())
    assert [r["round"] for r in rows] == [0, 1, 2]
    assert [r["role"] for r in rows] == ["teacher", "student", "student"]
    for row in rows:
        assert row["validation_auc"] is not None and 0.0 <= row["validation_auc"] <= 1.0
        assert row["unlabelled_auc"] is not None           # tfseti.synth wrote the truth
    assert rows[0]["pseudo_records"] == rows[1]["pseudo_records"] == 24
    lines = stdout.strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("round  role"))
    assert [line.split()[:2] for line in lines[header + 1:header + 4]] == [
        ["0", "teacher"], ["1", "student"], ["2", "student"]]
    assert len(pd.read_csv(out / "round2" / "unlabelled.csv")) == 24


@pytest.mark.slow
def test_students_train_on_the_pseudo_labels_from_the_teacher(finished_loop):
    out, _ = finished_loop
    for k in (1, 2):
        fold = out / f"round{k}" / "fold0"
        sources = json.loads((fold / "data.json").read_text())["sources"]
        assert sources["labelled"] == 24 and sources["extra_ratio"] == 0.5
        assert sources["extra"] == [{"data": str(out / f"pseudo{k - 1}"),
                                     "kind": "pseudo-labelled", "records": 24}]
        init = json.loads((fold / "init.json").read_text())
        assert init["source"] == str(out / f"round{k - 1}" / "fold0" / "model.keras")
        assert init["tensors"] > 20 and not init["not_loaded"]
        config = json.loads((fold / "config.json").read_text())
        assert config["model"]["options"]["dropout"] == 0.5          # the student's noise
        assert config["data"]["extra"] == [str(out / f"pseudo{k - 1}")]
    rates = [json.loads((out / f"round{k}" / "fold0" / "config.json").read_text())["train"]
             ["learning_rate"] for k in (1, 2)]
    assert rates == [0.001, 0.0005]                                  # --last: round 2 only
    teacher = json.loads((out / "round0" / "fold0" / "config.json").read_text())
    assert teacher["model"]["options"]["dropout"] == 0.0 and teacher["train"]["init_from"] is None


@pytest.mark.slow
def test_a_rerun_with_other_settings_is_refused(finished_loop, data):
    out, _ = finished_loop
    argv = loop_argv(data, out)
    argv[argv.index("--extra-ratio") + 1] = "0.25"
    done = subprocess.run(argv, cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "extra_ratio: 0.5 there, 0.25 now" in done.stderr and "choose another --out" in done.stderr


# -- python -m tfseti.pseudo on the loop's teacher ---------------------------------------------
def read_records(folder: Path) -> dict:
    out = {}
    for path in open_shard_folder(str(folder)).paths:
        for serialized in tf.data.TFRecordDataset(path):
            record = parse_example(serialized)
            out[record["id"].numpy().decode()] = (float(record["target"]), int(record["label"]),
                                                  record["source"].numpy().decode())
    return out


@pytest.mark.slow
def test_pseudo_label_shards_carry_the_teachers_soft_targets(finished_loop):
    out, _ = finished_loop
    folder = out / "pseudo0"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["schema_version"] == 2 and manifest["num_records"] == 24
    assert manifest["pseudo"]["settings"]["teachers"] == [str(out / "round0" / "fold0" / "saved_model")]
    assert manifest["pseudo"]["settings"]["select"] == "all"
    table = pd.read_csv(folder / "pseudo_labels.csv", dtype={"id": str})
    predictions = pd.read_csv(folder / "predictions.csv", dtype={"id": str})
    stored = read_records(folder)
    assert sorted(stored) == sorted(table["id"]) == sorted(predictions["id"])
    for row in table.itertuples():
        target, label, source = stored[row.id]
        assert target == pytest.approx(row.target, abs=1e-6) and label == int(row.target >= 0.5)
        assert source == "pseudo:" + str(out / "round0" / "fold0" / "saved_model")
    done = subprocess.run([sys.executable, "-m", "tfrecords_tools.verify", str(folder)],
                          cwd=REPO, env=subprocess_env(), capture_output=True, text=True)
    assert done.returncode == 0 and "OK, 24 records" in done.stdout


@pytest.mark.slow
def test_pseudo_label_selection_reruns_and_refusals(finished_loop, data, tmp_path, capsys):
    out, _ = finished_loop
    args = ["--teacher", str(out / "round0"), "--data", str(data / "kaggle"), "--no-progress"]
    target = tmp_path / "confident"
    assert pseudo_main([*args, "--out", str(target), "--select", "confident:3,4", "--hard"]) == 0
    stored = read_records(target)
    assert sorted(t for t, _, _ in stored.values()) == [0.0] * 4 + [1.0] * 3
    probabilities = pd.read_csv(target / "predictions.csv")["probability"].to_numpy()
    chosen = pd.read_csv(target / "pseudo_labels.csv")["probability"].to_numpy()
    assert np.isclose(sorted(chosen)[-3:], sorted(probabilities)[-3:]).all()
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["counts"]["classes"] == {"0": 4, "1": 3}
    assert manifest["pseudo"]["chosen"] == 7 and manifest["pseudo"]["unlabelled"] == 24
    capsys.readouterr()

    # The same command again: nothing to do. Other settings: refused, or replaced on request.
    assert pseudo_main([*args, "--out", str(target), "--select", "confident:3,4", "--hard"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert pseudo_main([*args, "--out", str(target), "--select", "all"]) == 2
    assert "select: 'confident:3,4' there, 'all' now" in capsys.readouterr().err
    assert pseudo_main([*args, "--out", str(target), "--select", "all", "--overwrite"]) == 0
    assert len(read_records(target)) == 24

    # An interrupted run (progress document, a stray shard) starts over.
    broken = tmp_path / "interrupted"
    broken.mkdir()
    (broken / "_progress.json").write_text("{}")
    (broken / "pseudo-00000-of-00003.tfrec").write_bytes(b"partial")
    teacher = pd.read_csv(out / "pseudo0" / "predictions.csv")["probability"].to_numpy()
    low, high = np.quantile(teacher, [0.3, 0.7])
    selection = f"threshold:{float(low)!r},{float(high)!r}"
    assert pseudo_main([*args, "--tta", "flips", "--out", str(broken), "--select", selection]) == 0
    assert "starting over" in capsys.readouterr().out
    assert len(read_records(broken)) == int(((teacher <= low) | (teacher >= high)).sum())
    assert not (broken / "pseudo-00000-of-00003.tfrec").exists()
    assert not (broken / "_progress.json").exists()
    # A folder of other shards is not overwritten.
    assert pseudo_main([*args, "--out", str(data / "shards")]) == 2
    assert "not pseudo-labels" in capsys.readouterr().err
    assert pseudo_main([*args, "--out", str(tmp_path / "x"), "--select", "confident:30,0"]) == 2
    assert "asks for 30 records, the unlabelled set has 24" in capsys.readouterr().err


@pytest.mark.slow
def test_the_report_counts_training_records_by_source(finished_loop, tmp_path):
    from tfseti.report import write_report

    out, _ = finished_loop
    index = write_report(str(out / "round1"), out=str(tmp_path / "report"), log=lambda line: None)
    html = Path(index).read_text()
    assert f"24 labelled + 24 pseudo-labelled ({out / 'pseudo0'}); extra share 50% of every batch" in html
    assert f"{out / 'round0'} (all)" in html                 # initialised from the teacher


# -- python -m tfseti.adapt (SHOT) on the loop's teacher -----------------------------------------
@pytest.mark.slow
def test_shot_adapts_the_features_and_keeps_the_head(finished_loop, data, tmp_path, capsys):
    from tfseti.adapt import main as adapt_main
    from tfseti.models import load_network
    from tfseti.predict import load_model, open_test_data, predict

    out, _ = finished_loop
    teacher = out / "round0" / "fold0"
    target = tmp_path / "shot"
    args = ["--model", str(out / "round0"), "--unlabelled", str(data / "kaggle"), "--out",
            str(target), "--epochs", "2", "--batch-size", "8", "--prior", "0.5"]
    assert adapt_main(args) == 0
    assert "epoch 2/2: loss" in capsys.readouterr().out
    result = json.loads((target / "fold0" / "adapt.json").read_text())
    assert [row["epoch"] for row in result["history"]] == [1, 2] and result["records"] == 24
    before, after = load_network(str(teacher / "model.keras")), load_network(
        str(target / "fold0" / "model.keras"))
    for name in ("logits",):                                   # the frozen head
        for a, b in zip(before.get_layer(name).get_weights(), after.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    changed = [not np.array_equal(a, b) for a, b in zip(
        before.get_layer("backbone").get_weights(), after.get_layer("backbone").get_weights())]
    assert any(changed)                                        # the features were adapted
    scored = predict([load_model(str(target / "fold0" / "saved_model"))],
                     open_test_data(str(data / "kaggle")))
    assert len(scored.ids) == 24 and ((scored.target >= 0) & (scored.target <= 1)).all()

    assert adapt_main(args) == 2                               # --out holds the first run
    assert "is not empty; pass --overwrite" in capsys.readouterr().err
    assert adapt_main([*args[:-2], "--prior", "1.5", "--overwrite"]) == 2
    assert "--prior must be in (0, 1)" in capsys.readouterr().err
    assert adapt_main(["--model", str(tmp_path), "--unlabelled", str(data / "kaggle"),
                       "--out", str(tmp_path / "x")]) == 2
    assert "neither a fold folder" in capsys.readouterr().err

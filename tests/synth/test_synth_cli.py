"""``python -m tfseti.synth``: a working run reports its throughput; bad arguments fail clearly."""

from __future__ import annotations

import pandas as pd
import pytest

from tfseti.io.kaggle import KaggleDataset
from tfseti.synth.__main__ import main


def test_cli_writes_dataset_with_progress_and_throughput(tmp_path, capsys):
    out = tmp_path / "d"
    code = main(["--out", str(out), "--n-train", "6", "--n-test", "2", "--positive-rate", "0.5",
                 "--snr", "20:30", "--families", "sine,pulsed", "--seed", "4", "--workers", "2"])
    captured = capsys.readouterr()
    assert code == 0
    assert "cadences/s" in captured.out.strip().splitlines()[-1]
    assert "8/8" in captured.err  # the tqdm progress bar reached the end
    assert len(KaggleDataset(str(out), "train").ids()) == 6
    truth = pd.read_csv(out / "truth.csv", keep_default_na=False)
    positives = truth[truth.target == 1]
    assert len(positives) == 4 and set(positives.family) <= {"sine", "pulsed"}
    assert positives.snr.astype(float).between(20, 30).all()


def test_cli_refuses_existing_dataset(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--n-train", "1", "--n-test", "0", "--no-progress"]
    assert main(args) == 0
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize("args, message", [
    (["--snr", "5"], "argument --snr: expected MIN:MAX"),
    (["--snr", "30:10"], "argument --snr: expected MIN:MAX with 0 < MIN <= MAX"),
    (["--snr", "a:b"], "argument --snr"),
    (["--families", "linear,zigzag"], "argument --families: unknown family zigzag; expected a comma-separated "
                                      "subset of linear,squared,sine,pulsed,broad"),
    (["--families", "linear,linear"], "listed twice"),
    (["--n-train", "-3"], "argument --n-train: expected an integer >= 0, got -3"),
    (["--n-test", "x"], "argument --n-test: expected an integer >= 0"),
    (["--positive-rate", "1.5"], "argument --positive-rate: expected a number in [0, 1]"),
    (["--workers", "0"], "argument --workers: expected an integer >= 1"),
    (["--n-train", "0", "--n-test", "0"], "nothing to write"),
])
def test_cli_rejects_bad_arguments(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "d"), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "d").exists()

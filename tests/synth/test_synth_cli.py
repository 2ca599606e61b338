"""``python -m tfseti.synth``: a working run reports its throughput; bad arguments fail clearly."""

from __future__ import annotations

import pandas as pd
import pytest

from tfseti import console
from tfseti.io.kaggle import KaggleDataset
from tfseti.synth.__main__ import main


def test_cli_writes_dataset_with_progress_and_throughput(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(console, "interactive", lambda stream=None: True)  # as on a terminal
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


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "d"), "--n-train", "2", "--n-test", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "cadences/s" in captured.out


def test_cli_refuses_existing_dataset(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--n-train", "1", "--n-test", "0", "--no-progress"]
    assert main(args) == 0
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize("args, message", [
    (["--snr", "5"], "argument --snr: expected MIN:MAX (uniform"),
    (["--snr", "5:50:exp"], "MIN:MAX:log (log-uniform"),
    (["--snr", "5,-1"], "comma-separated list"),
    (["--rfi-scale", "0"], "argument --rfi-scale: expected an integer >= 1"),
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


def test_snr_scales_and_rfi_scale(tmp_path):
    import numpy as np

    from tfseti.synth.cadence import CadenceConfig, draw_snr
    from tfseti.synth.parameters import DEFAULT_RANGES, scaled_rfi

    rng = np.random.default_rng(0)
    fixed = {draw_snr(rng, CadenceConfig(snr=(5, 40), snr_scale="choice", snr_values=(5, 10, 20, 40)))
             for _ in range(200)}
    assert fixed == {5.0, 10.0, 20.0, 40.0}
    log = np.array([draw_snr(rng, CadenceConfig(snr=(5, 50), snr_scale="log")) for _ in range(4000)])
    assert log.min() >= 5 and log.max() <= 50
    # log-uniform: half of the needles below the geometric mean sqrt(5 * 50) = 15.8
    assert abs(np.mean(log < np.sqrt(250)) - 0.5) < 0.03
    with pytest.raises(ValueError, match="snr_values"):
        CadenceConfig(snr_scale="choice")
    heavy = scaled_rfi(DEFAULT_RANGES, 3)
    assert (heavy.max_zero_drift_rfi, heavy.max_drifting_rfi, heavy.max_bursts) == (
        3 * DEFAULT_RANGES.max_zero_drift_rfi, 3 * DEFAULT_RANGES.max_drifting_rfi,
        3 * DEFAULT_RANGES.max_bursts)

    assert main(["--out", str(tmp_path / "d"), "--n-train", "0", "--n-test", "12", "--positive-rate",
                 "1", "--snr", "5,40", "--rfi-scale", "2", "--no-progress"]) == 0
    import pandas as pd

    truth = pd.read_csv(tmp_path / "d" / "truth.csv")
    assert set(truth.snr) <= {5.0, 40.0}

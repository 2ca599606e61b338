"""benchmarks/domain_shift.py at toy size: the stages' command lines resolve to the intended runs,
and the summary (scale check, per-family table) is right on real synthetic evaluation data with
predictions whose AUCs are known. The two trainings are not run here (minutes on a CPU)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import domain_shift as bench


def _module_argv(stage, module: str) -> list[str]:
    python, flag, name, *rest = stage.argv
    assert (flag, name) == ("-m", module), stage.argv
    return rest


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_tiny_settings_and_bad_snr(capsys):
    settings = bench.parse_args(["--tiny", "--out", "x", "--seed", "3"])
    assert (settings.n_train, settings.n_eval, settings.epochs) == (24, 24, 1)
    assert settings.tiny and settings.seed == 3 and settings.snr == (60.0, 150.0)
    with pytest.raises(SystemExit):
        bench.parse_args(["--snr", "60-150"])
    assert "--snr: expected MIN:MAX, got '60-150'" in capsys.readouterr().err


def test_stage_command_lines_resolve_to_the_intended_runs(tmp_path):
    from tfseti.data.config import InjectConfig
    from tfseti.train import cli
    from tfseti.config import to_dict

    settings = bench.Settings(out=str(tmp_path), seed=5, inject_p=0.25, snr=(50.0, 120.0))
    stages = bench.build_stages(settings)
    train_set, eval_set = (_module_argv(s, "tfseti.synth") for s in stages[:2])
    assert _option(train_set, "--families") == "linear"
    assert _option(eval_set, "--families") == "linear,sine,squared"
    assert (_option(train_set, "--seed"), _option(eval_set, "--seed")) == ("5", "6")
    assert _option(train_set, "--snr") == _option(eval_set, "--snr") == "50:120"
    assert _option(eval_set, "--n-train") == "0" and _option(train_set, "--n-test") == "0"

    runs = {}
    for stage in stages:
        if stage.argv[2] == "tfseti.train":
            args = cli.parse_args(_module_argv(stage, "tfseti.train"))
            runs[Path(args.out).name] = cli.resolve_run(args)
    assert sorted(runs) == ["baseline", "injected"]
    assert not runs["baseline"].augment.inject.active
    assert runs["injected"].augment.inject == InjectConfig(
        p=0.25, families=("sine", "squared"), snr=(50.0, 120.0), missing_prob=0.2)
    base, injected = (to_dict(runs[name]) for name in ("baseline", "injected"))
    base["augment"].pop("inject"), injected["augment"].pop("inject")
    assert base == injected                     # the same recipe, seeds and data otherwise
    assert base["data"]["deterministic"] and base["train"]["seed"] == base["augment"]["seed"] == 5
    assert base["train"]["fold"] == bench.VAL_FOLD

    predicted = [_module_argv(s, "tfseti.predict") for s in stages if s.argv[2] == "tfseti.predict"]
    assert [_option(a, "--model") for a in predicted] == [str(settings.run_dir(r)) for r in bench.RUNS]
    assert all(_option(a, "--data") == str(settings.eval_data) for a in predicted)


def test_summary_table_on_synthetic_evaluation_data(tmp_path, capsys):
    settings = dataclasses.replace(bench.parse_args(["--tiny", "--out", str(tmp_path)]), workers=1)
    stages = bench.build_stages(settings)
    bench.run_stage(1, 2, stages[1])            # the evaluation set only: no training here
    truth = pd.read_csv(settings.eval_data / "truth.csv", dtype={"id": str})
    positives = truth[truth["target"] == 1]
    assert set(positives["family"]) == {"linear", "sine", "squared"}
    # Known AUCs: baseline ranks only linear positives above the negatives (the others tie with
    # them: 0.5); injected ranks every positive above every negative.
    pd.DataFrame({"id": truth["id"], "target": (truth["family"] == "linear").astype(float)}) \
        .to_csv(settings.predictions("baseline"), index=False)
    pd.DataFrame({"id": truth["id"], "target": truth["target"].astype(float)}) \
        .to_csv(settings.predictions("injected"), index=False)

    table = bench.summarise(settings, {"stage": 1.0}, 1, 2)

    printed = capsys.readouterr().out
    assert list(table["family"]) == ["linear", "sine", "squared", "all"]
    assert list(table.columns) == ["family", "n_pos", "n_neg", "baseline", "injected",
                                   "diff_low", "diff_high"]
    rows = table.set_index("family")
    share_linear = rows.loc["linear", "n_pos"] / len(positives)
    np.testing.assert_allclose(rows["baseline"], [1.0, 0.5, 0.5, 0.5 + 0.5 * share_linear])
    np.testing.assert_allclose(rows["injected"], 1.0)
    # Every resample keeps these orderings: the interval of a constant difference is that constant.
    np.testing.assert_allclose(rows.loc[["linear", "sine", "squared"], "diff_low"], [0.0, 0.5, 0.5])
    np.testing.assert_allclose(rows.loc[["linear", "sine", "squared"], "diff_high"], [0.0, 0.5, 0.5])
    all_diff = 0.5 - 0.5 * share_linear
    assert rows.loc["all", "diff_low"] < all_diff < rows.loc["all", "diff_high"]
    assert rows["n_neg"].eq((truth["target"] == 0).sum()).all()
    assert rows.loc["all", "n_pos"] == len(positives) == rows["n_pos"].iloc[:3].sum()
    assert "AUC baseline  AUC injected     diff         diff 95% CI" in printed
    for family in ("linear", "sine", "squared", "all"):
        line = next(l for l in printed.splitlines() if l.startswith(family + " "))
        assert len(line.split()) == 8, line       # family, n_pos, n_neg, 2 AUCs, diff, [low, high]
    assert "+0.5000  [+0.5000, +0.5000]" in printed   # sine and squared: injected - baseline

    saved = json.loads((tmp_path / "results.json").read_text())
    assert [row["family"] for row in saved["table"]] == ["linear", "sine", "squared", "all"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "results.csv"), table)
    # Synthetic and injected needles of the same parameters on the same background agree in scale
    # (both are setigen's SNR); a wrong noise scale or SNR definition gives a ratio far from 1.
    ratios = json.loads((tmp_path / "scale_check.json").read_text())
    assert sorted(ratios) == ["sine", "squared"]
    assert all(len(v) == 1 and 0.8 < v[0] < 1.25 for v in ratios.values()), ratios


def test_predictions_must_cover_every_evaluation_id():
    truth = pd.DataFrame({"id": ["a", "b", "c"], "target": [1, 0, 0], "family": ["sine", "", ""]})
    good = pd.DataFrame({"id": ["a", "b", "c"], "target": [0.9, 0.1, 0.2]})
    table = bench.family_aucs(truth, {"baseline": good})
    assert list(table["family"]) == ["sine", "all"] and table["baseline"].tolist() == [1.0, 1.0]
    assert table["diff_low"].eq(0.0).all()        # one run: its difference with itself
    with pytest.raises(ValueError, match=r"predictions of 'injected': 1 id\(s\) of the truth missing"):
        bench.family_aucs(truth, {"baseline": good, "injected": good.iloc[:2]})

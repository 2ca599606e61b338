"""``python -m tfseti.demo``: arguments checked before any stage runs; stages use the shared flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfseti import demo


def test_fewer_than_one_worker_is_refused_before_any_stage(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "run_stage", lambda *a: pytest.fail("a stage ran"))
    with pytest.raises(SystemExit) as caught:
        demo.main(["--out", str(tmp_path / "demo"), "--workers", "0"])
    assert caught.value.code == 2
    assert "argument --workers: expected an integer >= 1, got 0" in capsys.readouterr().err


def test_stages_use_one_spelling_to_silence_progress():
    plan = demo.build_plan(Path("out"), 10, 4, 0, 2)
    flags = {arg for stage in plan.stages for arg in stage.argv if arg.startswith("--")}
    assert "--no-progress" in flags and not flags & {"--quiet", "--progress"}


def _runnable(module: str) -> bool:
    """Whether ``python -m module`` runs something: a package's ``__main__`` or a module's
    ``if __name__ == "__main__":`` block (an import alone exits 0 and prints nothing)."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    if spec.submodule_search_locations is not None:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    return 'if __name__ == "__main__":' in Path(spec.origin).read_text()


def _stage_module(argv: list[str]) -> str:
    """The module a stage runs: ``python -m MODULE ...`` or ``python -m tfseti.cli COMMAND ...``
    (the ``tfseti`` program, its own commands or those added through its entry points)."""
    from tfseti.cli import COMMANDS, added_commands

    module = argv[argv.index("-m") + 1]
    if module != "tfseti.cli":
        return module
    name = argv[argv.index("-m") + 2]
    added = added_commands()
    assert name in COMMANDS or (name in added and added[name].problem is None), \
        f"tfseti {name}: no such command (tfseti --help)"
    return COMMANDS[name][0] if name in COMMANDS else added[name].module


def test_every_stage_runs_a_command_module():
    # A module that lost its command line would pass as a stage that did nothing (exit 0).
    plan = demo.build_plan(Path("out"), 10, 4, 0, 2)
    modules = [_stage_module(stage.argv) for stage in plan.stages]
    assert [m for m in modules if not _runnable(m)] == []


def test_shard_stages_go_through_the_tfseti_program():
    """convert and verify are the tfseti program's added commands: the demo runs them as a user
    types them (``tfseti convert``) and names no module of the package that provides them."""
    plan = demo.build_plan(Path("out"), 10, 4, 0, 2)
    via_cli = [stage.argv[stage.argv.index("-m") + 2] for stage in plan.stages
               if stage.argv[stage.argv.index("-m") + 1] == "tfseti.cli"]
    assert via_cli == ["convert", "verify"]
    assert [_stage_module(s.argv) for s in plan.stages if "tfseti.cli" in s.argv] == [
        "tfrecords_tools.convert", "tfrecords_tools.verify"]


def _scored_demo_folder(tmp_path, submission_ids=None):
    plan = demo.build_plan(tmp_path, 10, 4, 0, 2)
    plan.data.mkdir(parents=True)
    (plan.data / "truth.csv").write_text("id,target,split,family,snr\n"
                                         "t0,1,train,linear,20\n"
                                         "a,1,test,linear,20\nb,0,test,,\nc,1,test,sine,30\nd,0,test,,\n")
    ids = submission_ids or ["a", "b", "c", "d"]
    scores = dict(zip(["a", "b", "c", "d"], [0.9, 0.1, 0.8, 0.2]))
    (plan.submission).write_text("id,target\n" + "".join(f"{i},{scores.get(i, 0.5)}\n" for i in ids))
    plan.classical.write_text("id,target\na,0.9\nb,0.95\nc,0.2\nd,0.1\n")
    return plan


def test_test_set_scored_model_against_classical_with_paired_intervals(tmp_path, capsys):
    plan = _scored_demo_folder(tmp_path)
    row = demo.score_test_set(plan, n_boot=50)
    assert row["auc_model"] == 1.0 and row["auc_classical"] == 0.5
    assert row["diff_classical"] == 0.5 and row["ci_diff_classical"][0] <= 0.5
    demo.print_comparison(row, 4)
    printed = capsys.readouterr().out
    assert "the model is ahead of the classical search by +0.5000" in printed


def test_a_submission_missing_test_ids_is_an_error(tmp_path):
    from tfseti.evaluate import EvaluationError

    plan = _scored_demo_folder(tmp_path, submission_ids=["a", "b", "c"])
    with pytest.raises(EvaluationError, match=r"submission.csv: 1 id\(s\) of the truth missing"):
        demo.score_test_set(plan, n_boot=10)

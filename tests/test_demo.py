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


def test_every_stage_runs_a_command_module():
    # A module that lost its command line would pass as a stage that did nothing (exit 0).
    plan = demo.build_plan(Path("out"), 10, 4, 0, 2)
    modules = [stage.argv[stage.argv.index("-m") + 1] for stage in plan.stages]
    assert [m for m in modules if not _runnable(m)] == []

"""tfseti.command: refusals as one line and exit 2, the shared flags, when the console is set up."""

from __future__ import annotations

import argparse
import sys

import pytest

from tfseti import command


def test_a_refusal_is_one_error_line_and_exit_2(capsys):
    @command.command(ValueError, FileNotFoundError)
    def main(argv=None, extra=None):
        """the doc"""
        if argv == ["bad"]:
            raise FileNotFoundError("no/such/file: not found")
        if argv == ["worse"]:
            raise KeyError("a bug")
        return 0 if extra is None else extra

    assert main.__doc__ == "the doc" and main.__name__ == "main"
    assert main([]) == 0 and main([], extra=5) == 5
    assert main(["bad"]) == command.EXIT_REFUSED == 2
    captured = capsys.readouterr()
    assert captured.err == "error: no/such/file: not found\n" and captured.out == ""
    with pytest.raises(KeyError):  # not a refusal: a bug keeps its traceback
        main(["worse"])


def test_a_refusal_code_may_be_kept(capsys):
    main = command.command(RuntimeError, code=1)(lambda: (_ for _ in ()).throw(RuntimeError("x")))
    assert main() == 1
    assert capsys.readouterr().err == "error: x\n"


def test_run_command_exits_with_mains_code(monkeypatch):
    calls = []
    monkeypatch.setattr(command, "setup_console", lambda: calls.append("console"))
    with pytest.raises(SystemExit) as done:
        command.run_command(lambda: 3)
    assert done.value.code == 3 and calls == ["console"]


def test_common_flags_are_one_definition():
    parser = argparse.ArgumentParser(prog="cmd", parents=[
        command.workers_flag("things in parallel", 2),
        command.common_flags("no_progress", "storage_options", "break_lock")])
    assert parser.parse_args([]) == argparse.Namespace(
        workers=2, no_progress=False, storage_options=None, break_lock=False)
    assert parser.parse_args(["--workers", "3", "--no-progress", "--break-lock",
                              "--storage-options", '{"token": "anon"}']) == argparse.Namespace(
        workers=3, no_progress=True, storage_options={"token": "anon"}, break_lock=True)
    for argv in (["--workers", "0"], ["--storage-options", "[1]"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    assert "things in parallel (default 2)" in parser.format_help()
    assert "(default 4)" in command.workers_flag("shards", shown=4).format_help()
    with pytest.raises(ValueError, match="unknown common flag"):
        command.common_flags("no-progress")


@pytest.mark.parametrize("argv, orig, module", [
    (["-m", "a"], ["python", "-m", "tfseti.scan", "a"], "tfseti.scan"),
    (["-m"], ["python", "-X", "utf8", "-W", "ignore", "-m", "tfseti.predict"], "tfseti.predict"),
    (["-m", "x"], ["python", "-mtfrecords_tools.convert", "x"], "tfrecords_tools.convert"),
    (["-m", "-m", "y"], ["python", "-Im", "pytest", "-m", "y"], "pytest"),
    (["script.py", "a"], ["python", "script.py", "a"], None),  # not locating a -m module
    (["-c", "a"], ["python", "-c", "code", "a"], None),
])
def test_python_m_module(argv, orig, module):
    assert command.python_m_module(argv, orig) == module


@pytest.mark.parametrize("packages", [(), ("tfrecords_tools",)], ids=["tfseti", "another-package"])
def test_only_a_python_m_of_our_modules_sets_up_the_console(monkeypatch, packages):
    """``import tfseti`` checks its own modules; a package of commands built on tfseti (the shard
    programs) passes its own name from its ``__init__`` (tfseti names no such package)."""
    calls = []
    monkeypatch.setattr(command, "setup_console", lambda: calls.append(sys.argv[-1]))
    assert command.PACKAGES == ("tfseti",)
    for orig, ours in ((["python", "-m", "tfseti.scan"], not packages),
                       (["python", "-m", "pytest"], False),
                       (["python", "-m", "tfseti_plus"], False),
                       (["python", "-m", "tfrecords_tools_plus.x"], False),
                       (["python", "-m", "tfrecords_tools.verify"], bool(packages))):
        monkeypatch.setattr(sys, "argv", ["-m"])
        monkeypatch.setattr(sys, "orig_argv", orig)
        calls.clear()
        command.setup_python_m(*packages)
        assert bool(calls) is ours, orig

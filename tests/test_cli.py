"""The ``tfseti`` command: every subcommand is its ``python -m`` entry point; the shard programs
are added through the ``tfseti.commands`` entry points, so tfseti names none of their modules."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from tfseti import cli
from tfseti.cli import COMMANDS, ENTRY_POINT_GROUP, added_commands, main, module_source

# What pyproject.toml registers in [project.entry-points."tfseti.commands"].
SHARD_PROGRAMS = {"convert": "tfrecords_tools.convert", "verify": "tfrecords_tools.verify",
                  "snippet-matching": "tfrecords_tools.snippet_matching"}


def _run(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "tfseti.cli", *args], capture_output=True,
                          text=True, timeout=300, **kwargs)


def test_every_subcommand_names_an_entry_point_module():
    added = {name: (command.module, command.summary) for name, command in added_commands().items()}
    assert {name: module for name, (module, _) in added.items()} == SHARD_PROGRAMS, \
        "the installed metadata lacks the tfseti.commands entry points: pip install -e ."
    for name, (module, summary) in {**COMMANDS, **added}.items():
        path = module_source(module)
        with open(path) as handle:
            text = handle.read()
        # Every entry point runs as a command (tfseti.command: console set-up, exit code); a
        # package's __main__.py does it unguarded, a module guards it.
        assert "run_command(main)" in text and (path.endswith("__main__.py")
                                                or '__name__ == "__main__"' in text), \
            f"{name}: {path} is no entry point"
        assert summary


def test_help_lists_every_command_and_imports_no_tensorflow():
    code = ("import sys; from tfseti.cli import main; rc = main(['--help']); "
            "assert 'tensorflow' not in sys.modules; "
            "assert not [m for m in sys.modules if m.startswith('tfrecords_tools')]; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in [*COMMANDS, *SHARD_PROGRAMS]:
        assert f"  {name} " in done.stdout
    # an added command's summary is the first line of its module's docstring
    assert "  verify             Check a shard prefix against its manifest\n" in done.stdout
    assert "BROKEN" not in done.stdout


@pytest.mark.parametrize("name", sorted(SHARD_PROGRAMS))
def test_added_subcommand_is_its_python_m_program(name):
    """`tfseti convert --help` is `python -m tfrecords_tools.convert --help` (found through the
    installed entry point, not a table in tfseti)."""
    via_cli = _run(name, "--help")
    via_module = subprocess.run([sys.executable, "-m", SHARD_PROGRAMS[name], "--help"],
                                capture_output=True, text=True, timeout=300)
    assert via_cli.returncode == via_module.returncode == 0, via_cli.stderr
    assert via_cli.stdout == via_module.stdout
    assert via_cli.stdout.startswith(f"usage: python -m {SHARD_PROGRAMS[name]} ")


def test_tfseti_names_no_module_of_the_packages_built_on_it():
    """The dependency runs one way: tfrecords_tools -> tfseti (`grep -r tfrecords_tools tfseti/`
    finds nothing, code, comments and data alike)."""
    root = os.path.dirname(cli.__file__)
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            with open(os.path.join(folder, name), "rb") as handle:
                if b"tfrecords_tools" in handle.read():
                    found.append(os.path.relpath(os.path.join(folder, name), root))
    assert found == []


def _entry(name, value):
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_broken_entry_points_are_named_with_what_was_expected(tmp_path, monkeypatch):
    (tmp_path / "pkg_without_main").mkdir()
    (tmp_path / "pkg_without_main" / "__init__.py").write_text("")
    (tmp_path / "good_cmd.py").write_text('"""Say ``hello``."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    added = added_commands([
        _entry("good", "good_cmd"), _entry("gone", "no_such_package.cmd"),
        _entry("attr", "good_cmd:main"), _entry("train", "good_cmd"),
        _entry("twice", "good_cmd"), _entry("twice", "other_cmd"), _entry("pkg", "pkg_without_main")])
    assert added["good"].problem is None and added["good"].summary == "Say hello"
    problems = {name: command.problem for name, command in added.items() if name != "good"}
    assert problems == {
        "gone": "no module no_such_package.cmd",
        "attr": "expected a module name (NAME = \"package.module\"), got 'good_cmd:main'",
        "train": "'train' is tfseti's own command (python -m tfseti.train); expected a new name",
        "twice": f"registered 2 times in {ENTRY_POINT_GROUP} (good_cmd, other_cmd)",
        "pkg": "pkg_without_main is a package without a __main__ module",
    }
    assert added["gone"].origin == "entry point gone = no_such_package.cmd"


def test_an_installed_packages_commands_are_found_and_run(tmp_path):
    """A distribution on the path that registers tfseti.commands adds subcommands: listed, run
    as `python -m` with the arguments and exit code, or refused in one line when broken."""
    (tmp_path / "hello_cmd.py").write_text(
        '"""Greet from an added command."""\nimport sys\n'
        'if __name__ == "__main__":\n    print("hello", sys.argv[1:])\n    sys.exit(3)\n')
    info = tmp_path / "hello_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hello-pkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nhello = hello_cmd\nbroken = hello_cmd_gone\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])}
    listed = _run("--help", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "  hello              Greet from an added command\n" in listed.stdout
    assert ("  broken             BROKEN: no module hello_cmd_gone (entry point broken = "
            "hello_cmd_gone (hello-pkg 1.0))") in listed.stdout
    assert "  convert  " in listed.stdout  # this project's own entry points stay
    ran = _run("hello", "a", "--b", env=env)
    assert (ran.returncode, ran.stdout) == (3, "hello ['a', '--b']\n")
    broken = _run("broken", "x", env=env)
    assert broken.returncode == 2 and broken.stdout == ""
    assert broken.stderr == ("error: tfseti: command 'broken' cannot run: no module hello_cmd_gone "
                             "(entry point broken = hello_cmd_gone (hello-pkg 1.0); reinstall the "
                             "package that registers it)\n")


def test_version(capsys):
    from tfseti import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tfseti {__version__}"


def test_unknown_command_is_one_line_with_the_nearest_name(capsys):
    assert main(["tran"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: tfseti: unknown command 'tran'; did you mean train? "
                   "(tfseti --help lists them)"]
    assert main(["verfy"]) == 2  # the added commands are near names too
    assert "did you mean verify?" in capsys.readouterr().err
    assert main([]) == 2


def test_subcommand_is_the_entry_point_same_output_and_exit_code(tmp_path):
    """`tfseti synth ...` and `python -m tfseti.synth ...` behave the same: help, a refused
    argument (exit 2, the parser's own message) and a real run."""
    via_cli = _run("synth", "--help")
    via_module = subprocess.run([sys.executable, "-m", "tfseti.synth", "--help"],
                                capture_output=True, text=True)
    assert via_cli.returncode == via_module.returncode == 0
    assert via_cli.stdout == via_module.stdout
    bad = _run("dedoppler", "data", "--no-such-flag")
    assert bad.returncode == 2 and "unrecognized arguments: --no-such-flag" in bad.stderr


def test_installed_console_script():
    """`make venv` installs the package with pip, which writes the `tfseti` script."""
    script = os.path.join(os.path.dirname(sys.executable), "tfseti")
    assert os.path.exists(script), f"{script}: not installed (pip install -e . writes it)"
    done = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("tfseti ")

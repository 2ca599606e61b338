"""The ``tfseti`` command: every subcommand is its ``python -m`` entry point."""

from __future__ import annotations

import os
import subprocess
import sys

from tfseti.cli import COMMANDS, main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "tfseti.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_every_subcommand_names_an_entry_point_module():
    import importlib.util

    for name, (module, summary) in COMMANDS.items():
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{name}: no module {module}"
        path = spec.origin if not spec.submodule_search_locations else os.path.join(
            spec.submodule_search_locations[0], "__main__.py")
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
            "assert 'tensorflow' not in sys.modules; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in COMMANDS:
        assert f"  {name} " in done.stdout


def test_version(capsys):
    from tfseti import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tfseti {__version__}"


def test_unknown_command_is_one_line_with_the_nearest_name(capsys):
    assert main(["tran"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: tfseti: unknown command 'tran'; did you mean train? "
                   "(tfseti --help lists them)"]
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

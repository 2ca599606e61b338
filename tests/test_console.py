"""tfseti.console: TensorFlow's start-up lines filtered (by every command, not by importing
tfseti), progress only on terminals, shared flags."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys

import pytest

from tfseti import console

BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
ONEDNN = ("I0000 00:00:1796151138.192272   24380 port.cc:153] oneDNN custom operations are on. "
          "You may see slightly different numerical results")
CUDA = ("I0000 00:00:1796151138.192957   24380 cudart_stub.cc:31] Could not find cuda drivers on "
        "your machine, GPU will not be used.")
CUINIT = ("E0000 00:00:1796151176.923685   24787 cuda_platform.cc:52] failed call to cuInit: "
          "INTERNAL: CUDA error")
FATAL = "F0000 00:00:1796151176.923685   24787 thing.cc:1] Check failed: x"


def test_filter_drops_the_banner_and_absl_lines_below_the_level():
    text = "\n".join([BANNER, ONEDNN, CUDA, "a line of Python's own", CUINIT, FATAL, ""]).encode()
    assert console.filter_startup_lines(text, 3).decode().splitlines() == [
        "a line of Python's own", FATAL]
    assert console.filter_startup_lines(text, 2).decode().splitlines() == [
        "a line of Python's own", CUINIT, FATAL]
    assert console.filter_startup_lines(text, 0).decode().splitlines() == [
        ONEDNN, CUDA, "a line of Python's own", CUINIT, FATAL]


@pytest.fixture
def noisy_module(tmp_path, monkeypatch):
    """A module that writes TensorFlow-like start-up lines on file descriptor 2 when imported."""
    name = "tfseti_fake_tensorflow"
    (tmp_path / f"{name}.py").write_text(
        "import os, sys\n"
        f"os.write(2, {(BANNER + chr(10) + ONEDNN + chr(10) + CUDA + chr(10)).encode()!r})\n"
        "sys.stderr.write('its own warning\\n')\n"
        "LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    yield name
    sys.modules.pop(name, None)


def test_the_first_import_is_filtered_at_the_file_descriptor(noisy_module, capfd, monkeypatch):
    monkeypatch.delenv(console.TF_LOGS_ENV, raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    console.install((noisy_module,))
    module = __import__(noisy_module)
    assert module.LOADED and module.__loader__.__class__.__name__ != "_QuietLoader"
    assert not any(noisy_module in getattr(f, "names", ()) for f in sys.meta_path)  # done
    err = capfd.readouterr().err
    assert err == "its own warning\n"


@pytest.fixture
def importer_of_optional(tmp_path, monkeypatch, noisy_module):
    """``noisy_module`` plus a module that, like Keras, imports two optional packages under
    ``try``/``except ImportError`` and records which it found: one imported before, one not."""
    for name in ("tfseti_fake_sklearn", "tfseti_fake_pandas"):
        (tmp_path / f"{name}.py").write_text("VALUE = 1\n")
    (tmp_path / "tfseti_fake_keras.py").write_text(
        "FOUND = []\n"
        "for name in ('tfseti_fake_sklearn', 'tfseti_fake_pandas'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "        FOUND.append(name)\n"
        "    except ImportError:\n"
        "        pass\n")
    monkeypatch.setattr(console, "KERAS_OPTIONAL", ("tfseti_fake_sklearn", "tfseti_fake_pandas"))
    __import__("tfseti_fake_pandas")  # imported before: left alone
    yield "tfseti_fake_keras"
    for name in ("tfseti_fake_keras", "tfseti_fake_sklearn", "tfseti_fake_pandas"):
        sys.modules.pop(name, None)


def test_keras_optional_packages_look_absent_only_during_the_first_import(importer_of_optional,
                                                                          monkeypatch):
    monkeypatch.delenv(console.TF_LOGS_ENV, raising=False)
    console.install((importer_of_optional,))
    module = __import__(importer_of_optional)
    assert module.FOUND == ["tfseti_fake_pandas"]     # the one not imported yet was hidden
    assert __import__("tfseti_fake_sklearn").VALUE == 1  # and imports as usual afterwards
    assert sys.modules["tfseti_fake_pandas"] is not None


def test_keras_optional_packages_stay_hidden_through_a_nested_import_and_come_back_after_a_failure():
    hidden = ("tfseti_fake_absent_a",)
    with console._Absent(hidden):
        with console._Absent(hidden):  # the nested import (keras inside tensorflow) restores nothing
            pass
        assert sys.modules["tfseti_fake_absent_a"] is None
        with pytest.raises(ImportError):
            __import__("tfseti_fake_absent_a")
    assert "tfseti_fake_absent_a" not in sys.modules
    with pytest.raises(RuntimeError), console._Absent(hidden):
        raise RuntimeError("the import failed")
    assert "tfseti_fake_absent_a" not in sys.modules


def test_a_command_imports_tensorflow_without_keras_optional_packages_and_can_use_them_after():
    code = ("import sys\n"
            "from tfseti import console\n"
            "console.install()\n"
            "import tensorflow, keras\n"
            "print(sorted(n for n in console.KERAS_OPTIONAL if n in sys.modules))\n"
            "import sklearn.metrics, pandas, matplotlib\n"
            "print(sklearn.metrics.roc_auc_score([0, 1], [0.2, 0.7]))\n")
    env = {k: v for k, v in os.environ.items() if k != console.TF_LOGS_ENV}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "1.0"]


def test_tfseti_tf_logs_brings_the_lines_back(noisy_module, capfd, monkeypatch):
    monkeypatch.setenv(console.TF_LOGS_ENV, "1")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    console.install((noisy_module,))
    __import__(noisy_module)
    err = capfd.readouterr().err
    assert BANNER in err and "oneDNN" in err and "cuda drivers" in err
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ


def test_install_sets_the_log_level_unless_set(monkeypatch):
    monkeypatch.delenv(console.TF_LOGS_ENV, raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    console.install(())
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    console.install(())
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"


def _tfseti_script() -> str:
    return os.path.join(os.path.dirname(sys.executable), "tfseti")


@pytest.mark.parametrize("argv", [
    # tfseti.predict's package __init__ imports TensorFlow before its __main__ runs: the console
    # is set up while Python locates the -m module (tfseti.command.setup_python_m).
    [sys.executable, "-m", "tfseti.predict", "--help"],
    # the installed program sets it up before it runs the subcommand's module
    [_tfseti_script(), "convert", "--help"],
], ids=["python-m", "tfseti-program"])
def test_commands_quiet_tensorflow_start_up(argv):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", console.TF_LOGS_ENV)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ")
    assert done.stderr == ""  # no absl banner, oneDNN, cuda drivers, cpu_feature_guard lines


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_only_on_a_terminal(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert console.show_progress(True, _Stream(True))
    assert not console.show_progress(True, _Stream(False))  # a log file, a pipe
    assert not console.show_progress(False, _Stream(True))  # --no-progress
    monkeypatch.setattr(sys, "stdout", _Stream(False))
    assert [console.keras_verbose(v) for v in ("auto", 1, 2, 0)] == [2, 2, 2, 0]
    monkeypatch.setattr(sys, "stdout", _Stream(True))
    assert [console.keras_verbose(v) for v in ("auto", 1, 2, 0)] == [1, 1, 2, 0]


def test_shared_argument_types():
    parser = argparse.ArgumentParser(prog="cmd")
    parser.add_argument("--workers", type=console.positive_int)
    parser.add_argument("--storage-options", type=console.json_object)
    assert parser.parse_args(["--workers", "3", "--storage-options", '{"token": "anon"}']) == \
        argparse.Namespace(workers=3, storage_options={"token": "anon"})
    for argv in (["--workers", "0"], ["--workers", "x"], ["--storage-options", "{bad"],
                 ["--storage-options", "[1]"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)


def test_word_or_int_takes_its_words_or_an_integer_at_least_low():
    parse = console.word_or_int(("auto", "none"), 2)
    assert parse("auto") == "auto" and parse("none") == "none" and parse("7") == 7
    for bad in ("1", "x", "2.5", "Auto"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"expected auto, none or an integer >= 2"):
            parse(bad)

"""What the commands write to the console, the same way in every ``python -m`` entry point.

* **TensorFlow start-up lines.** Importing TensorFlow 2.21 writes 6 lines on stderr from C++
  (twice: "WARNING: All log messages before absl::InitializeLog() is called are written to
  STDERR", "oneDNN custom operations are on ...", "Could not find cuda drivers ...") and, at the
  first op, "cpu_feature_guard ... rebuild TensorFlow" (+ 1 line) and on CPU-only hosts "failed
  call to cuInit". The import-time ones come from absl's static initializers in TensorFlow's
  shared libraries, before TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL``: no environment variable
  stops them (``TF_CPP_MIN_LOG_LEVEL``, ``GLOG_minloglevel`` tried; ``TF_ENABLE_ONEDNN_OPTS=0``
  would change numerics). :func:`install` (run when a command starts, before TensorFlow is
  imported: see :mod:`tfseti.command`; importing tfseti does not) therefore

  - sets ``TF_CPP_MIN_LOG_LEVEL=3`` unless it is set already (the later lines), and
  - while ``tensorflow`` is first imported, points file descriptor 2 at a temporary file, then
    writes back everything except absl-format lines below that level and absl's pre-init banner
    (the import-time lines). Python output and tracebacks of that import come through.

* **Keras' optional integrations.** Keras imports scikit-learn (for its ``keras.wrappers``
  estimators), pandas (DataFrames in ``fit``) and ``matplotlib.pyplot`` (``plot_image_gallery``)
  whenever they are installed: 3.6 of the 10 s that ``import tensorflow`` took on a 2-core host,
  paid again by every command. No command uses those three integrations, and Keras imports each
  under ``try``/``except ImportError``, so while TensorFlow or Keras is first imported the three
  packages look absent (``sys.modules[name] = None``) unless something imported them already.
  Afterwards they import as usual (the report still draws with matplotlib and scores with
  scikit-learn); only Keras' own wrappers for them stay off in that process.

  ``TFSETI_TF_LOGS=1`` turns all of this off (TensorFlow's own behaviour, for debugging; also the
  way to see a message of a TensorFlow import that kills the process).
* **Progress.** Bars and Keras' per-batch progress only on a terminal (or a notebook):
  :func:`show_progress` for tqdm bars (``--no-progress`` turns them off everywhere),
  :func:`keras_verbose` for ``fit`` (one line per epoch when stdout is a file or a pipe).
* **Shared argparse types**: :func:`positive_int` (``--workers``), :func:`json_object`
  (``--storage-options``); the shared flags themselves are :mod:`tfseti.command`'s.

Standard library only: the commands import it before anything else.
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import os
import re
import sys
import tempfile

TF_LOGS_ENV = "TFSETI_TF_LOGS"
QUIET_MODULES = ("tensorflow", "keras")  # whichever is imported first imports the other
KERAS_OPTIONAL = ("sklearn", "pandas", "matplotlib")  # see the module doc
DEFAULT_TF_LOG_LEVEL = "3"  # hides INFO, WARNING and ERROR lines; FATAL ones still show

# absl's text format: severity letter, MMDD, time, thread id, file:line] message.
_ABSL_LINE = re.compile(rb"^([IWEF])\d{4} \d\d:\d\d:\d+(?:\.\d+)?\s+\d+ [^\s\]]+:\d+\] ")
_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}


def tf_logs_wanted() -> bool:
    """``TFSETI_TF_LOGS`` set to anything but empty/0/false/no."""
    return os.environ.get(TF_LOGS_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _min_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def filter_startup_lines(data: bytes, min_level: int) -> bytes:
    """``data`` without absl's pre-init banner and absl lines of a severity below ``min_level``."""
    kept = []
    for line in data.splitlines(keepends=True):
        bare = line.rstrip(b"\r\n")
        if bare == _ABSL_BANNER:
            continue
        match = _ABSL_LINE.match(bare)
        if match and _SEVERITY[match.group(1)] < min_level:
            continue
        kept.append(line)
    return b"".join(kept)


class _FilteredStderr:
    """Context manager: fd 2 goes to a temporary file; on exit the filtered text is written back."""

    def __enter__(self):
        self.saved = None
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError, OSError):
            pass
        try:
            self.saved = os.dup(2)
            self.capture = tempfile.TemporaryFile()
            os.dup2(self.capture.fileno(), 2)
        except OSError:  # no usable fd 2 (a daemon): leave it alone
            if self.saved is not None:
                os.close(self.saved)
            self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is None:
            return False
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError, OSError):
            pass
        os.dup2(self.saved, 2)
        os.close(self.saved)
        with self.capture:
            self.capture.seek(0)
            text = filter_startup_lines(self.capture.read(), _min_level())
        while text:
            written = os.write(2, text)
            text = text[written:]
        return False


class _Absent:
    """Context manager: ``names`` not imported yet look absent (``import`` raises ImportError)
    inside it; on exit they are importable again. Names already imported are left alone, so a
    nested use restores nothing that an outer one set."""

    def __init__(self, names):
        self.names = names

    def __enter__(self):
        self.hidden = [name for name in self.names if name not in sys.modules]
        for name in self.hidden:
            sys.modules[name] = None
        return self

    def __exit__(self, *exc):
        for name in self.hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
        return False


class _QuietLoader(importlib.abc.Loader):
    """Runs the wrapped loader's ``exec_module`` inside :class:`_FilteredStderr`, with
    :data:`KERAS_OPTIONAL` absent (:class:`_Absent`)."""

    def __init__(self, loader, finder, name):
        self._loader = loader
        self._finder = finder
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._finder.done(self._name)  # the first import loads the libraries; later ones are quiet
        # The real loader from here on (importlib.resources and friends look at it).
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with _FilteredStderr(), _Absent(KERAS_OPTIONAL):
            self._loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``names`` through the other finders and wraps their loader in :class:`_QuietLoader`."""

    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.names:
            return None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader, self, fullname)
                return spec
        return None

    def done(self, name):
        """``name`` is being imported: stop watching for it (and leave when nothing is left)."""
        self.names.discard(name)
        if not self.names and self in sys.meta_path:
            sys.meta_path.remove(self)


def install(modules: tuple[str, ...] = QUIET_MODULES) -> None:
    """Quiet and trim TensorFlow's start-up (see the module doc); a no-op with ``TFSETI_TF_LOGS=1``.

    Call before TensorFlow is imported; every command does (:func:`tfseti.command.setup_console`).
    Installs the import hook once.
    """
    if tf_logs_wanted():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_TF_LOG_LEVEL)
    pending = [m for m in modules if m not in sys.modules]
    installed = set()
    for finder in sys.meta_path:
        if isinstance(finder, _QuietFinder):
            installed |= finder.names
    pending = [m for m in pending if m not in installed]
    if pending:
        sys.meta_path.insert(0, _QuietFinder(pending))


# ----------------------------------------------------------------------------- progress

def _in_notebook() -> bool:
    """A running Jupyter/Colab kernel (a shell with a kernel attached), not merely ``ipykernel``
    imported: a test runner that executes notebooks imports it too."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001  any failure means: not in a notebook
        return False
    return getattr(shell, "kernel", None) is not None


def interactive(stream=None) -> bool:
    """Whether ``stream`` (default stderr) shows a live display: a terminal, or a notebook."""
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError, OSError):
        pass
    return _in_notebook()


def show_progress(progress: bool = True, stream=None) -> bool:
    """Draw a progress bar? Only when asked (no ``--no-progress``) and ``stream`` is interactive:
    into a log file or a pipe a bar is only carriage returns and escape codes."""
    return bool(progress) and interactive(stream)


def keras_verbose(verbose="auto"):
    """The ``verbose`` for Keras ``fit``/``predict``: its per-batch bar (``1``, and ``"auto"``) on
    a terminal, one line per epoch (``2``) when stdout is a file or a pipe; ``0``/``2`` as given."""
    if verbose in ("auto", 1, True):
        return 1 if interactive(sys.stdout) else 2
    return verbose


# ----------------------------------------------------------------------------- argparse types

def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
    return value


def word_or_int(words: tuple[str, ...], low: int):
    """argparse type: one of ``words`` (``auto`` ...) or an integer >= ``low``."""
    def parse(text: str):
        if text in words:
            return text
        try:
            return _int_at_least(text, low)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected {', '.join(words)} or an integer >= {low}, "
                                             f"got {text!r}") from None
    return parse


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--workers``)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a count that may be zero)."""
    return _int_at_least(text, 0)


def json_object(text: str) -> dict:
    """argparse type: a JSON object (``--storage-options '{"token": "anon"}'``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as "
                                         f"'{{\"token\": \"anon\"}}', got {text!r}")
    return value

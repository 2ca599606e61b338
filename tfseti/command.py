"""What every command shares: the console set-up, refusals as one ``error:`` line and exit code 2,
and the common flags as argparse parent parsers. An entry point is::

    from tfseti.command import command, common_flags, run_command

    @command(ValueError, FileNotFoundError)     # these exceptions are refusals
    def main(argv=None) -> int:
        parser = argparse.ArgumentParser(prog="python -m tfseti.x",
                                         parents=[common_flags("no_progress", "break_lock")])
        ...
        return 0

    if __name__ == "__main__":
        run_command(main)

* **Console** (:func:`setup_console`, i.e. :func:`tfseti.console.install`: TensorFlow's C++
  start-up lines quieted, ``TFSETI_TF_LOGS=1`` brings them back). It happens only when a command
  runs, and before TensorFlow is imported:

  - ``tfseti <x>`` (:mod:`tfseti.cli`): before the subcommand's module runs;
  - ``python -m tfseti.<x>``: :func:`setup_python_m`, called by ``import tfseti`` only while
    Python locates the ``-m`` module (``sys.argv[0] == "-m"``, as the documentation of ``-m``
    says), that is before the package ``__init__`` files of the command run
    (``tfseti.predict``'s imports TensorFlow). A package of other commands built on tfseti
    (those added to ``tfseti`` through its entry points, :mod:`tfseti.cli`) calls
    ``setup_python_m("its_package")`` from its ``__init__`` for its own ``python -m``;
  - :func:`run_command`, once more (a no-op after either).

  A plain ``import tfseti`` changes no global state (``tests/test_import_side_effects.py``).
* **Refusals** (:func:`command`): the exceptions a command expects (bad input, a missing file, a
  locked folder) print one line, ``error: <message>``, on stderr and the exit code is 2, as for
  argparse's own usage errors (``tfseti download`` keeps its 1: ``code=1``). An exception class
  that also derives from :class:`Refusal` is a refusal of every command. Any other exception is a
  bug: its traceback is shown.
* **Common flags** (:func:`common_flags`, :func:`workers_flag`): one definition and one help
  text each for ``--no-progress``, ``--storage-options`` and ``--break-lock``; ``--workers N``
  has one type and one form of help, with what runs in parallel and the default of each command.

Standard library only (``import tfseti`` imports this module for ``python -m``).
"""

from __future__ import annotations

import argparse
import functools
import sys

from tfseti import console

EXIT_REFUSED = 2
"""The exit code of a refusal (and of argparse's usage errors)."""

PACKAGES = ("tfseti",)
"""``python -m`` of a module in these packages is a command (see :func:`setup_python_m`)."""


# ----------------------------------------------------------------------------- console

def setup_console() -> None:
    """Quiet TensorFlow's start-up lines for this process (idempotent; see :mod:`tfseti.console`)."""
    console.install()


def python_m_module(argv: list[str] | None = None, orig_argv: list[str] | None = None) -> str | None:
    """The module of ``python -m MODULE ...`` while Python locates it, else None.

    Meanwhile ``sys.argv`` is ``["-m", *args]`` and ``sys.orig_argv`` ends with ``MODULE, *args``
    (or ``-mMODULE, *args``); ``argv`` and ``orig_argv`` default to those."""
    argv = sys.argv if argv is None else argv
    orig = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if argv[:1] != ["-m"] or len(orig) < len(argv):
        return None
    name = orig[len(orig) - len(argv)]
    if name.startswith("-"):  # -mMODULE (or -ImMODULE)
        name = name.partition("m")[2]
    return name or None


def is_command_module(name: str | None, packages: tuple[str, ...] = PACKAGES) -> bool:
    """``name`` is a module of ``packages`` (of :data:`PACKAGES`: ``tfseti.scan``)."""
    return bool(name) and name.split(".", 1)[0] in packages


def setup_python_m(*packages: str) -> None:
    """Set up the console when this process is ``python -m`` of a module of ``packages``
    (default :data:`PACKAGES`; ``import tfseti`` calls this only while a ``-m`` module is being
    located). Another package of commands calls it with its own name from its ``__init__``."""
    if is_command_module(python_m_module(), packages or PACKAGES):
        setup_console()


def run_command(main) -> None:
    """Run ``main()`` as the process's command: the console set up, its return value the exit
    code (``raise SystemExit``). For ``if __name__ == "__main__":``."""
    setup_console()
    raise SystemExit(main())


# ----------------------------------------------------------------------------- refusals

def refuse(err: BaseException | str) -> None:
    """The one line of a refusal: ``error: <message>`` on stderr."""
    print(f"error: {err}", file=sys.stderr)


class Refusal(Exception):
    """A mix-in of exceptions that are always refusals, whichever command meets them (a strategy
    that cannot start, a run that went non-finite): a command need not import the (heavy) module
    that defines one to list it in :func:`command`."""


def command(*refusals: type[BaseException], code: int = EXIT_REFUSED):
    """Decorator of an entry point's ``main``: an exception of ``refusals`` (and its subclasses)
    or a :class:`Refusal` is printed as one ``error:`` line and ``main`` returns ``code`` (2)
    instead. Only the expected failures belong in ``refusals``; anything else keeps its
    traceback."""
    refusals = (*refusals, Refusal)

    def wrap(main):
        @functools.wraps(main)
        def refusing(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except refusals as err:
                refuse(err)
                return code
        return refusing
    return wrap


# ----------------------------------------------------------------------------- common flags

def _break_lock_help() -> str:
    from tfseti.io.folder_lock import BREAK_LOCK_HELP

    return BREAK_LOCK_HELP


_FLAGS = {
    "no_progress": lambda parser: parser.add_argument(
        "--no-progress", action="store_true",
        help="no progress bars (there are none when stderr is not a terminal)"),
    "storage_options": lambda parser: parser.add_argument(
        "--storage-options", type=console.json_object, default=None,
        help="fsspec options of the locations read and written, a JSON object, e.g. "
             "'{\"token\": \"anon\"}'"),
    "break_lock": lambda parser: parser.add_argument(
        "--break-lock", action="store_true", help=_break_lock_help()),
}
"""The shared flags by name (the ``dest`` they set)."""


def common_flags(*names: str) -> argparse.ArgumentParser:
    """A parent parser (``ArgumentParser(parents=[...])``) of the shared flags ``names``: any of
    ``no_progress``, ``storage_options``, ``break_lock``."""
    unknown = [name for name in names if name not in _FLAGS]
    if unknown:
        raise ValueError(f"unknown common flag(s) {unknown}; expected some of {sorted(_FLAGS)}")
    parent = argparse.ArgumentParser(add_help=False)
    for name in names:
        _FLAGS[name](parent)
    return parent


def workers_flag(what: str, default: int | None = None,
                 shown: int | str | None = None) -> argparse.ArgumentParser:
    """A parent parser of ``--workers N`` (an integer >= 1, :func:`tfseti.console.positive_int`):
    ``what`` runs in parallel; the help shows ``shown`` (when the default is worked out later)
    or ``default``."""
    parent = argparse.ArgumentParser(add_help=False)
    told = default if shown is None else shown
    parent.add_argument("--workers", type=console.positive_int, default=default, metavar="N",
                        help=what + ("" if told is None else f" (default {told})"))
    return parent

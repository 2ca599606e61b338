"""The ``tfseti`` command: one installed program, one subcommand per ``python -m`` entry point.

``tfseti train ...`` runs exactly what ``python -m tfseti.train ...`` runs (the entry point's
module is executed as ``__main__`` with the same arguments), so every flag, message and exit
code is the entry point's own and ``python -m`` keeps working unchanged. Before the module runs,
the console is set up as for every command (``tfseti.command``). ``tfseti --help`` lists
the subcommands, ``tfseti --version`` prints the version, and a misspelt subcommand gets one
line with the nearest names. ``python -m tfseti.cli`` is the same program.

Two kinds of subcommands:

* **tfseti's own** (:data:`COMMANDS`): plain data, in the order of the data flow.
* **added by other packages** through the entry-point group :data:`ENTRY_POINT_GROUP` of their
  metadata, each naming the module ``python -m`` runs::

      [project.entry-points."tfseti.commands"]
      NAME = "package.module"

  The shard programs (``convert``, ``verify``, ``snippet-matching``, this project's
  ``pyproject.toml``) come this way: their package depends on tfseti, so tfseti names none of
  their modules. An entry point is read from the installed
  metadata (``pip install -e .`` writes it; rerun it after changing ``pyproject.toml``). One that
  cannot run (no such module, ``module:attr`` instead of a module, a package without
  ``__main__``, a name of tfseti's own or registered twice) is listed as broken by ``--help`` and
  refused with one line naming the entry point when it is called.

Listing the commands imports none of them (no TensorFlow): an added command's summary is the
first line of its module's docstring, read from the source file, which is found without
importing its packages.
"""

from __future__ import annotations

import ast
import difflib
import importlib.machinery
import importlib.util
import re
import runpy
import sys
from dataclasses import dataclass

from tfseti.command import EXIT_REFUSED, refuse, setup_console

# subcommand -> (module run as __main__, one-line summary). In the order of the data flow.
COMMANDS: dict[str, tuple[str, str]] = {
    "download": ("tfseti.download", "download the Kaggle competition data into the Kaggle layout"),
    "synth": ("tfseti.synth", "write synthetic (setigen) cadences in the Kaggle layout"),
    "synth-observation": ("tfseti.synth.observation",
                          "write a synthetic six-file .h5/.fil observation cadence"),
    "validate": ("tfseti.data.validate", "check every file of a Kaggle-layout folder"),
    "preview": ("tfseti.data.preview", "look at training batches as the model sees them"),
    "convert-timm": ("tfseti.models.convert_timm",
                     "timm NF checkpoint -> Keras .weights.h5"),
    "train": ("tfseti.train", "train a needle classifier (one fold or all folds)"),
    "report": ("tfseti.report", "HTML report of a training run"),
    "explain": ("tfseti.explain", "Grad-CAM heat maps of a run's networks"),
    "predict": ("tfseti.predict", "predict a test set and write a Kaggle submission"),
    "pseudo": ("tfseti.pseudo", "pseudo-label an unlabelled set into training shards"),
    "noisy-student": ("tfseti.noisy_student", "noisy-student rounds of teacher and student"),
    "adapt": ("tfseti.adapt", "SHOT domain adaptation on an unlabelled set"),
    "publish": ("tfseti.publish", "publish a run's SavedModels to Kaggle"),
    "dedoppler": ("tfseti.dedoppler", "classical de-Doppler ON/OFF search of Kaggle cadences"),
    "scan": ("tfseti.scan", "search .fil/.h5 observation cadences (model + classical)"),
    "sensitivity": ("tfseti.sensitivity",
                    "injection-recovery completeness and transmitter limits of a cadence"),
    "demo": ("tfseti.demo", "the end-to-end job on embedded synthetic data"),
}

ENTRY_POINT_GROUP = "tfseti.commands"
"""The entry-point group through which other packages add subcommands (``NAME = "module"``)."""

_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class BrokenCommand(LookupError):
    """An added command that cannot run; the message is the one-line reason."""


@dataclass(frozen=True)
class AddedCommand:
    """A subcommand registered in :data:`ENTRY_POINT_GROUP`."""

    name: str
    module: str
    origin: str  # which entry point: "entry point NAME = MODULE (DISTRIBUTION VERSION)"
    summary: str = ""
    problem: str | None = None  # why it cannot run; None when it can


def module_source(module: str) -> str:
    """The file that ``python -m module`` runs, found without importing anything (a parent
    package's ``__init__`` may import heavy things); :class:`BrokenCommand` when there is none."""
    if not _MODULE.fullmatch(module):
        raise BrokenCommand(f"expected a module name (NAME = \"package.module\"), got {module!r}")
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name: located, not imported
    except (ImportError, ValueError):
        spec = None
    for depth in range(2, len(parts) + 1):
        if spec is None or spec.submodule_search_locations is None:
            spec = None
            break
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]),
                                                        list(spec.submodule_search_locations))
    if spec is None or not spec.origin:
        raise BrokenCommand(f"no module {module}")
    if spec.submodule_search_locations is not None:  # a package: python -m runs its __main__
        main = importlib.machinery.PathFinder.find_spec(f"{module}.__main__",
                                                        list(spec.submodule_search_locations))
        if main is None or not main.origin:
            raise BrokenCommand(f"{module} is a package without a __main__ module")
        return main.origin
    return spec.origin


def _summary(path: str, module: str) -> str:
    """The first line of the module's docstring (RST literals unquoted), else ``python -m``."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = ast.get_docstring(ast.parse(handle.read()))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        doc = None
    line = doc.strip().splitlines()[0].replace("``", "").rstrip(".") if doc and doc.strip() else ""
    return line or f"python -m {module}"


def _entry_points():
    from importlib.metadata import entry_points

    return entry_points(group=ENTRY_POINT_GROUP)


def added_commands(entry_points=None) -> dict[str, AddedCommand]:
    """The subcommands other packages register in :data:`ENTRY_POINT_GROUP` (``entry_points``:
    those of the installed metadata), by name, each with its summary or its problem."""
    entry_points = list(_entry_points() if entry_points is None else entry_points)
    by_name: dict[str, list] = {}
    for point in entry_points:
        by_name.setdefault(point.name, []).append(point)
    added = {}
    for name, points in sorted(by_name.items()):
        point = points[0]
        dist = getattr(point, "dist", None)
        origin = f"entry point {name} = {point.value}" + (
            f" ({dist.name} {dist.version})" if dist is not None else "")
        command = AddedCommand(name, point.value, origin)
        try:
            if len(points) > 1:
                raise BrokenCommand(f"registered {len(points)} times in {ENTRY_POINT_GROUP} ("
                                    + ", ".join(p.value for p in points) + ")")
            if name in COMMANDS:
                raise BrokenCommand(f"{name!r} is tfseti's own command "
                                    f"(python -m {COMMANDS[name][0]}); expected a new name")
            path = module_source(point.value)
            command = AddedCommand(name, point.value, origin, _summary(path, point.value))
        except BrokenCommand as err:
            command = AddedCommand(name, point.value, origin, problem=str(err))
        added[name] = command
    return added


def _usage(added: dict[str, AddedCommand]) -> str:
    width = max(map(len, [*COMMANDS, *added]))
    lines = ["usage: tfseti COMMAND [ARGS ...]   (tfseti COMMAND --help for its options)",
             "       tfseti --version", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    if added:
        lines += ["", f"commands added by installed packages (entry points {ENTRY_POINT_GROUP}):"]
        lines += [f"  {name:<{width}}  " + (command.summary if command.problem is None else
                                            f"BROKEN: {command.problem} ({command.origin})")
                  for name, command in added.items()]
    lines += ["", "Each command is also `python -m MODULE` (tfseti train = python -m tfseti.train)."]
    return "\n".join(lines)


def _module(name: str) -> str | None:
    """The module that subcommand ``name`` runs; None (refused, one line) when it cannot run."""
    if name in COMMANDS:
        return COMMANDS[name][0]
    added = added_commands()
    if name not in added:
        near = difflib.get_close_matches(name, [*COMMANDS, *added], n=3)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        refuse(f"tfseti: unknown command {name!r}{hint} (tfseti --help lists them)")
        return None
    command = added[name]
    if command.problem is not None:
        refuse(f"tfseti: command {name!r} cannot run: {command.problem} ({command.origin}; "
               f"reinstall the package that registers it)")
        return None
    return command.module


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        try:
            print(_usage(added_commands()), flush=True)
        except BrokenPipeError:  # `tfseti --help | head`: the reader left, nothing to report
            sys.stdout = None
        return 0 if argv else EXIT_REFUSED
    if argv[0] == "--version":
        from tfseti import __version__

        print(f"tfseti {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    module = _module(name)
    if module is None:
        return EXIT_REFUSED
    setup_console()  # before the module's imports (TensorFlow)
    saved = sys.argv
    sys.argv = [f"tfseti {name}", *rest]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as done:  # the entry point's own exit code
        code = done.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())

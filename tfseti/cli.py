"""The ``tfseti`` command: one installed program, one subcommand per ``python -m`` entry point.

``tfseti train ...`` runs exactly what ``python -m tfseti.train ...`` runs (the entry point's
module is executed as ``__main__`` with the same arguments), so every flag, message and exit
code is the entry point's own and ``python -m`` keeps working unchanged. Before the module runs,
the console is set up as for every command (``tfseti.command``). ``tfseti --help`` lists
the subcommands, ``tfseti --version`` prints the version, and a misspelt subcommand gets one
line with the nearest names.

The table below is plain data: listing the commands imports none of them (no TensorFlow).
"""

from __future__ import annotations

import difflib
import runpy
import sys

from tfseti.command import EXIT_REFUSED, refuse, setup_console

# subcommand -> (module run as __main__, one-line summary). In the order of the data flow.
COMMANDS: dict[str, tuple[str, str]] = {
    "download": ("tfseti.download", "download the Kaggle competition data into the Kaggle layout"),
    "synth": ("tfseti.synth", "write synthetic (setigen) cadences in the Kaggle layout"),
    "synth-observation": ("tfseti.synth.observation",
                          "write a synthetic six-file .h5/.fil observation cadence"),
    "validate": ("tfseti.data.validate", "check every file of a Kaggle-layout folder"),
    "convert": ("tfrecords_tools.convert", "Kaggle-layout .npy cadences -> sharded TFRecords"),
    "verify": ("tfrecords_tools.verify", "check TFRecord shards against their manifest.json"),
    "snippet-matching": ("tfrecords_tools.snippet_matching",
                         "background removal by matching overlapping snippets"),
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


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: tfseti COMMAND [ARGS ...]   (tfseti COMMAND --help for its options)",
             "       tfseti --version", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "Each command is also `python -m MODULE` (tfseti train = python -m tfseti.train)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        try:
            print(_usage(), flush=True)
        except BrokenPipeError:  # `tfseti --help | head`: the reader left, nothing to report
            sys.stdout = None
        return 0 if argv else EXIT_REFUSED
    if argv[0] == "--version":
        from tfseti import __version__

        print(f"tfseti {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        near = difflib.get_close_matches(name, list(COMMANDS), n=3)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        refuse(f"tfseti: unknown command {name!r}{hint} (tfseti --help lists them)")
        return EXIT_REFUSED
    module = COMMANDS[name][0]
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

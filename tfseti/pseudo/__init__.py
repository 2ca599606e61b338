"""Pseudo-labels: a teacher ensemble labels an unlabelled set, written as training shards.

``python -m tfseti.pseudo --teacher RUN[,RUN...] --data UNLABELLED --out SHARDS
[--select all|confident:NPOS,NNEG|threshold:LO,HI] [--hard] [--tta flips]`` (``__main__``).
``selection`` chooses the records and their targets, ``labelling`` predicts and writes the shards
(record schema v2: soft target and source) that ``data.extra`` adds to a training run.
"""

from tfseti.pseudo.selection import FORMS, Selection, parse_selection, training_targets

__all__ = ["FORMS", "Selection", "parse_selection", "pseudo_label", "training_targets"]


def __getattr__(name):
    # TensorFlow comes with the labelling module: imported when it is used.
    if name == "pseudo_label":
        from tfseti.pseudo.labelling import pseudo_label

        return pseudo_label
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""tfseti: find technosignature needles in Breakthrough Listen cadences with TensorFlow/Keras.

Importing the package is cheap (sub-packages that need TensorFlow import it themselves) and
changes no global state: no import hook, no stream or environment change. Only a command quiets
TensorFlow's C++ start-up lines (``tfseti.command``; ``TFSETI_TF_LOGS=1`` brings them back): the
``tfseti`` program, and ``python -m tfseti.<x>``, for which the check below runs while Python
locates the module, before the command's packages import TensorFlow.
"""

import sys as _sys

if _sys.argv[:1] == ["-m"]:  # `python -m MODULE` is locating MODULE: is it one of ours?
    from tfseti.command import setup_python_m as _setup_python_m

    _setup_python_m()

__version__ = "0.1.0"

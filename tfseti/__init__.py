"""tfseti: find technosignature needles in Breakthrough Listen cadences with TensorFlow/Keras.

Importing the package is cheap: sub-packages that need TensorFlow import it themselves. It
quiets TensorFlow's C++ start-up lines for every entry point (``TFSETI_TF_LOGS=1`` brings them
back; see :mod:`tfseti.console`), which is why this runs before any submodule.
"""

from tfseti import console as _console

_console.install()

__version__ = "0.1.0"

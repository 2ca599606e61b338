"""tfseti: find technosignature needles in Breakthrough Listen cadences with TensorFlow/Keras.

Importing the package is cheap: sub-packages that need TensorFlow import it themselves.
"""

__version__ = "0.1.0"

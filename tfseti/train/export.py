"""SavedModel export: raw cadences in, needle probabilities out, nothing of tfseti needed to serve.

The ``serve`` endpoint (also ``serving_default``) takes ``float16[None, P, 273, 256]`` cadences
(P = 6, or 3 for ON-only recipes) and returns ``float32[None]`` probabilities: the input view,
resize and column normalisation run inside the graph, then the network (whose first stage is the
learned resizer for ``view.resize_method = "learned"``), then sigmoid (a 2-logit head's softmax of
the positive class is the sigmoid of the logit difference).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfseti.data.config import ViewConfig
from tfseti.data.views import make_view
from tfseti.models.heads import positive_logit


def export_saved_model(net: keras.Model, view: ViewConfig, path: str,
                       cadence_shape: tuple[int, int, int] = (6, 273, 256)) -> str:
    """Write the SavedModel of ``net`` behind ``view`` to ``path``; returns ``path``."""
    archive = keras.export.ExportArchive()
    archive.track(net)

    def serve(cadence):
        images = make_view(cadence, view)
        logits = net(images, training=False)
        return tf.sigmoid(positive_logit(logits))

    archive.add_endpoint(
        "serve", serve,
        input_signature=[tf.TensorSpec([None, *cadence_shape], tf.float16, name="cadence")])
    archive.write_out(path, verbose=False)
    return path

"""Grad-CAM finds the backbone's feature map in one network of every registered backbone
builder (plain CNN, EfficientNet, ResNet, NF) and gives what a hand-written computation through
that backbone and the head gives."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfseti.explain.gradcam import feature_layer, gradcam
from tfseti.models import create_model
from tfseti.models.factory import MODEL_REGISTRY

from test_gradcam import bilinear

pytestmark = pytest.mark.slow
# The smallest network of each backbone builder of the registry.
FAMILIES = {"plain_cnn": "plain_cnn_s", "efficientnet": "efficientnet_b0",
            "resnet": "resnet50", "nf": "nf_resnet26"}


def test_every_builder_of_the_registry_is_covered():
    builders = {entry.build_backbone for entry in MODEL_REGISTRY.values()}
    assert {MODEL_REGISTRY[name].build_backbone for name in FAMILIES.values()} == builders


@pytest.mark.parametrize("name", FAMILIES.values(), ids=FAMILIES.keys())
def test_backbone_feature_map_of_every_family(name):
    net = create_model(name, (32, 32, 1), weights=None)
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 1)).astype("float32")
    assert feature_layer(net).name == "backbone"
    result = gradcam(net, x)
    # By hand: image -> backbone -> pool -> logits (the default head), gradient of the logit.
    features = net.get_layer("backbone")(x, training=False)
    with tf.GradientTape() as tape:
        tape.watch(features)
        logits = net.get_layer("logits")(net.get_layer("pool")(features))
        total = tf.reduce_sum(logits[:, 0])
    grads = tape.gradient(total, features).numpy()
    np.testing.assert_allclose(result.scores, logits.numpy()[:, 0], rtol=1e-4, atol=1e-5)
    cam = np.maximum(np.einsum("bhwk,bk->bhw", features.numpy(), grads.mean(axis=(1, 2))), 0.0)
    for index in range(2):
        expected = bilinear(cam[index], (32, 32))
        expected = expected / expected.max() if expected.max() > 0 else expected
        np.testing.assert_allclose(result.heat[index], expected, atol=2e-4)

"""Fixtures of the model tests: tiny inputs, one build helper, the shared output check
(``tests/harness.py``), a dtype-policy switch that always restores the global policy, and a saved
3-channel backbone."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from harness import check_logits

# Tiny inputs keep EfficientNet builds at ~1 s; both sides divisible by 32 (the backbone stride).
HEIGHT, WIDTH = 64, 32


class ModelHarness:
    height, width = HEIGHT, WIDTH

    @staticmethod
    def images(channels: int, batch: int = 2, seed: int = 0, height: int = HEIGHT,
               width: int = WIDTH) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal(
            (batch, height, width, channels)).astype("float32")

    @staticmethod
    def build(name: str, channels: int, **options):
        from tfseti.models import create_model

        return create_model(name, (HEIGHT, WIDTH, channels), **options)

    check_logits = staticmethod(check_logits)   # the shared harness's

    @staticmethod
    @contextlib.contextmanager
    def dtype_policy(name: str):
        import keras

        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(name)
        try:
            yield
        finally:
            keras.config.set_dtype_policy(previous)


@pytest.fixture(scope="session")
def harness():
    return ModelHarness()


def _weights_file(source, path):
    """Give ``source``'s BN layers non-trivial statistics, save its weights to ``path``; returns
    ``(str(path), {layer name: weights})``."""
    import keras

    rng = np.random.default_rng(1)
    for layer in source.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma * rng.uniform(0.5, 1.5, gamma.shape),
                               beta + rng.normal(0, 0.1, beta.shape),
                               mean + rng.normal(0, 0.1, mean.shape),
                               var * rng.uniform(0.5, 1.5, var.shape)])
    source.save_weights(path)
    return str(path), {layer.name: [np.array(w) for w in layer.get_weights()]
                       for layer in source.layers if layer.weights}


@pytest.fixture(scope="module")
def b0_weights_file(tmp_path_factory):
    """A ``.weights.h5`` of the plain 3-channel ``keras.applications.EfficientNetB0`` (default
    stem, with its preprocessing layers) with random kernels and non-trivial BN statistics —
    what a user saves from the ImageNet model for offline use."""
    import keras

    source = keras.applications.EfficientNetB0(include_top=False, weights=None,
                                               input_shape=(HEIGHT, WIDTH, 3))
    return _weights_file(source, tmp_path_factory.mktemp("weights") /
                         "efficientnetb0_notop.weights.h5")


@pytest.fixture(scope="module")
def resnet50_weights_file(tmp_path_factory):
    """The same for ``keras.applications.ResNet50`` (3-channel, ``include_top=False``)."""
    import keras

    source = keras.applications.ResNet50(include_top=False, weights=None,
                                         input_shape=(HEIGHT, WIDTH, 3))
    return _weights_file(source, tmp_path_factory.mktemp("weights") /
                         "resnet50_notop.weights.h5")

"""Mixed precision and XLA: bf16 train step with jit_compile=True; float16 forward/backward."""

import keras
import numpy as np
import pytest
import tensorflow as tf


@pytest.mark.heavy
def test_mixed_bfloat16_train_step_compiles_with_xla(harness):
    with harness.dtype_policy("mixed_bfloat16"):
        model = harness.build("efficientnet_b0", 1, triplet_attention=True, dropout=0.2,
                              dropout_samples=2)
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=True)
    backbone = model.get_layer("backbone")
    assert backbone.get_layer("stem_conv").compute_dtype == "bfloat16"
    assert model.get_layer("triplet_attention").compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    x = harness.images(1, batch=4).astype("float16")  # any float input dtype; the model casts
    y = np.array([[0.0], [1.0], [0.0], [1.0]], "float32")
    before = backbone.get_layer("stem_conv").kernel.numpy()
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert not np.array_equal(backbone.get_layer("stem_conv").kernel.numpy(), before)
    harness.check_logits(model, x, 1)


def test_mixed_float16_forward_and_backward(harness):
    with harness.dtype_policy("mixed_float16"):
        model = harness.build("efficientnetv2_b0", 2, head="two_class", pooling="attention",
                              stem_strides=(1, 2))
    assert model.get_layer("backbone").get_layer("stem_conv").compute_dtype == "float16"
    x = tf.constant(harness.images(2))
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.reduce_mean(keras.losses.categorical_crossentropy(
            tf.one_hot([0, 1], 2), logits, from_logits=True))
    assert logits.dtype == tf.float32 and logits.shape == (2, 2)
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None and np.isfinite(np.asarray(g)).all() for g in grads)

"""Grad-CAM (Selvaraju et al. 2017; keras-io ``examples/vision/grad_cam.py``): where in its input
image a network found the evidence for its score.

For images ``(B, H, W, C)`` and a classifier network (``tfseti.models.create_model``, or any
Keras model whose output is ``(B, 1)`` / ``(B, 2)`` logits):

1. ``A`` = the last convolutional feature map ``(B, h, w, K)``: the output of the nested
   ``backbone`` model every registered family has (plain CNN, EfficientNet, NF-*, ResNet: what
   the pooling and head see, stride 32 or so); a network without one (a hand-made test network)
   uses its last top-level layer with a 4-D output;
2. ``y`` = the positive-class log-odds (:func:`tfseti.models.heads.positive_logit`: the logit of
   a one-logit head, ``l1 - l0`` of a two-logit one; the score of ``oof.csv``);
3. channel weights ``w_k`` = the spatial mean of ``dy / dA_k``;
4. ``CAM = ReLU(sum_k w_k A_k)``: the places whose features raise the score;
5. upsampled bilinearly to ``(H, W)`` (the view image the network was given) and divided by its
   maximum, so the peak is 1. A CAM that is zero everywhere (nothing raised the score) stays 0.

Gradients are taken in inference mode (dropout off, BatchNorm on its moving statistics), in
float32 whatever the layers' dtype policy, one batch at a time; samples do not interact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BACKBONE_LAYER = "backbone"  # the nested backbone model of tfseti.models.create_model


class GradCamError(ValueError):
    """A network Grad-CAM cannot explain; the message says what was expected."""


@dataclass
class GradCam:
    """Grad-CAM of a batch: ``heat (B, H, W)`` in [0, 1] on the input image's grid, ``scores
    (B,)`` the positive-class log-odds of the same forward pass, and the feature layer used."""

    heat: np.ndarray
    scores: np.ndarray
    layer: str


def feature_layer(net):
    """The layer whose output Grad-CAM weighs: the top-level ``backbone`` model, else the last
    top-level layer with a 4-D ``(B, h, w, K)`` output."""
    names = [layer.name for layer in net.layers]
    if BACKBONE_LAYER in names:
        return net.get_layer(BACKBONE_LAYER)
    for layer in reversed(net.layers):
        if _rank(layer) == 4 and layer.__class__.__name__ != "InputLayer":
            return layer
    raise GradCamError(f"network {net.name!r}: no '{BACKBONE_LAYER}' layer and no layer with a "
                       f"4-D (batch, height, width, channels) output: nothing to take a "
                       f"class activation map of")


def _outer_output(net, layer):
    """``layer``'s output tensor in ``net``'s graph. A nested model's ``.output`` is its own
    inner tensor; the tensor the outer graph feeds on is the output of the node ``net`` called
    it with (the layer must be called once)."""
    nodes = getattr(layer, "_inbound_nodes", [])
    if len(nodes) != 1:
        raise GradCamError(f"network {net.name!r}: layer {layer.name!r} is called "
                           f"{len(nodes)} times, expected once")
    outputs = nodes[0].output_tensors
    if len(outputs) != 1 or len(outputs[0].shape) != 4:
        raise GradCamError(f"network {net.name!r}: layer {layer.name!r} gives "
                           f"{[tuple(t.shape) for t in outputs]}, expected one 4-D feature map")
    return outputs[0]


def _rank(layer) -> int:
    output = getattr(layer, "output", None)
    return len(output.shape) if hasattr(output, "shape") else 0


class GradCamNetwork:
    """``net`` with the two outputs Grad-CAM needs (the feature map of ``layer``, default
    :func:`feature_layer`, and the logits), built once and called per batch."""

    def __init__(self, net, layer=None):
        import keras

        layer = layer if layer is not None else feature_layer(net)
        if len(net.outputs) != 1:
            raise GradCamError(f"network {net.name!r}: {len(net.outputs)} outputs, expected the "
                               f"logits alone")
        self.net, self.layer = net, layer.name
        self.model = keras.Model(net.inputs, [_outer_output(net, layer), net.outputs[0]],
                                 name=f"{net.name}_gradcam")

    def __call__(self, images) -> GradCam:
        import tensorflow as tf

        from tfseti.models.heads import positive_logit

        images = tf.convert_to_tensor(images)
        if images.shape.rank != 4:
            raise GradCamError(f"images: expected (batch, height, width, channels), got shape "
                               f"{tuple(images.shape)}")
        with tf.GradientTape() as tape:
            features, logits = self.model(images, training=False)
            scores = positive_logit(logits)
            total = tf.reduce_sum(scores)  # samples are independent: each its own gradient
        grads = tape.gradient(total, features)
        if grads is None:
            raise GradCamError(f"network {self.net.name!r}: the score does not depend on the "
                               f"output of {self.layer!r}")
        heat = class_activation_map(features, grads, tuple(images.shape[1:3]))
        return GradCam(heat=heat.numpy(), scores=scores.numpy().astype(np.float64),
                       layer=self.layer)


def class_activation_map(features, grads, size: tuple[int, int]):
    """Steps 3-5 for a feature map ``(B, h, w, K)`` and its gradients: ``(B, H, W)`` in [0, 1]."""
    import tensorflow as tf

    features = tf.cast(features, tf.float32)
    weights = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2))          # (B, K)
    cam = tf.nn.relu(tf.einsum("bhwk,bk->bhw", features, weights))
    cam = tf.image.resize(cam[..., None], size, method="bilinear")[..., 0]     # stays >= 0
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    return tf.where(peak > 0, cam / tf.where(peak > 0, peak, 1.0), 0.0)


def gradcam(net, images, layer=None) -> GradCam:
    """Grad-CAM of ``net`` for ``images`` ``(B, H, W, C)`` (see the module docstring); for many
    batches build one :class:`GradCamNetwork` and call it."""
    return GradCamNetwork(net, layer)(images)

"""Edits of a Keras functional-model config (``model.get_config()``), rebuilt with
``keras.Model.from_config``: how tfseti changes a ``keras.applications`` backbone (input shape,
stem, preprocessing) without copying its code. Layer names are kept, so weights map by name.
"""

from __future__ import annotations

import copy


def layer_config(config: dict, name: str) -> dict:
    """The entry of layer ``name`` in a functional config (a dict with ``class_name``/``config``)."""
    for layer in config["layers"]:
        if layer["name"] == name:
            return layer
    raise ValueError(f"no layer named {name!r} in model config {config.get('name')!r}; layers: "
                     f"{[layer['name'] for layer in config['layers']][:8]} ...")


def _map_tensors(node, fn):
    """Apply ``fn`` to every serialized Keras tensor (``__keras_tensor__``) inside ``node``."""
    if isinstance(node, dict):
        if node.get("class_name") == "__keras_tensor__":
            return fn(node)
        return {k: _map_tensors(v, fn) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_map_tensors(v, fn) for v in node)
    return node


def remove_layers(config: dict, class_names: set[str]) -> dict:
    """A copy of ``config`` without the single-input layers of ``class_names``; their consumers
    are rewired to the removed layer's input (e.g. drop Rescaling / Normalization)."""
    config = copy.deepcopy(config)
    replaced: dict[str, list] = {}  # removed layer name → keras_history of its input

    def rewire(tensor):
        history = list(tensor["config"]["keras_history"])
        while history[0] in replaced:
            history = list(replaced[history[0]])
        tensor = copy.deepcopy(tensor)
        tensor["config"]["keras_history"] = history
        return tensor

    kept = []
    for layer in config["layers"]:
        layer["inbound_nodes"] = _map_tensors(layer["inbound_nodes"], rewire)
        if layer["class_name"] in class_names:
            inputs = []
            _map_tensors(layer["inbound_nodes"], lambda t: inputs.append(t) or t)
            if len(inputs) != 1:
                raise ValueError(f"cannot remove layer {layer['name']!r}: it has {len(inputs)} "
                                 "inputs, expected 1")
            replaced[layer["name"]] = inputs[0]["config"]["keras_history"]
            continue
        kept.append(layer)
    config["layers"] = kept
    for key in ("output_layers", "input_layers"):
        refs = config[key]
        for ref in (refs if isinstance(refs[0], list) else [refs]):
            while ref[0] in replaced:
                ref[:] = replaced[ref[0]]
    return config


def set_input_shape(config: dict, shape: tuple) -> dict:
    """Set the (single) input layer's shape to ``(None, *shape)``."""
    refs = config["input_layers"]
    name = (refs[0] if isinstance(refs[0], list) else refs)[0]
    layer_config(config, name)["config"]["batch_shape"] = (None, *shape)
    return config


def use_global_dtype_policy(config: dict) -> dict:
    """Drop the per-layer dtype policies recorded at build time, so the rebuilt layers follow
    the global policy (``mixed_bfloat16`` / ``mixed_float16`` / ``float32``) in force."""
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer":
            layer["config"].pop("dtype", None)
    return config


def drop_build_configs(config: dict) -> dict:
    """Drop each layer's recorded ``build_config`` (its input shape at save time), so layers
    build from the edited graph's shapes (input size, channels) instead of the stale ones."""
    for layer in config["layers"]:
        layer.pop("build_config", None)
    return config

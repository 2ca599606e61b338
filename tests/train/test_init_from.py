"""``train.init_from``: another run's weights, matched layer by layer, with an account of both."""

import json
import os
import warnings

import numpy as np
import pytest

from tfseti.models import create_model
from tfseti.models.config import ModelConfig
from tfseti.train.init_from import InitFromError, initialise, resolve_source
from tfseti.train.train_config import TrainConfig

SHAPE = (32, 32, 1)


def net(seed, **options):
    import keras

    keras.utils.set_random_seed(seed)
    return create_model("plain_cnn_s", SHAPE, config=ModelConfig(**options))


def weights_of(model, layer_path):
    layer = model
    for name in layer_path.split("/"):
        layer = layer.get_layer(name)
    return [np.asarray(w) for w in layer.get_weights()]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A run folder with a trained-looking fold 1: ``run/fold1/model.keras``."""
    run = tmp_path_factory.mktemp("teacher")
    os.makedirs(run / "fold1")
    teacher = net(0)
    teacher.save(run / "fold1" / "model.keras")
    teacher.save_weights(run / "fold1" / "net.weights.h5")
    return run, teacher


def test_the_same_fold_of_a_run_folder_is_loaded_whole(teacher_run, tmp_path):
    run, teacher = teacher_run
    student = net(1)
    assert not same(weights_of(student, "logits"), weights_of(teacher, "logits"))
    report = initialise(student, str(run), "all", fold=1, build_like=lambda: net(2),
                        out_dir=str(tmp_path))
    assert report.source == str(run / "fold1" / "model.keras")
    assert not report.skipped and "logits" in report.loaded
    for a, b in zip(student.weights, teacher.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    written = json.loads((tmp_path / "init.json").read_text())
    assert written["tensors"] == report.tensors == len(teacher.weights)


def test_backbone_scope_leaves_the_head_as_initialised(teacher_run):
    run, teacher = teacher_run
    student = net(3)
    fresh_head = weights_of(student, "logits")
    report = initialise(student, str(run / "fold1"), "backbone", fold=0, build_like=None)
    assert same(weights_of(student, "logits"), fresh_head)
    assert same(weights_of(student, "backbone"), weights_of(teacher, "backbone"))
    assert ("logits", "outside init_scope 'backbone'") in report.skipped
    assert all(path.startswith("backbone/") for path in report.loaded)
    assert "not loaded, left as initialised: " in report.summary()


def test_layers_of_other_shapes_are_reported_and_left_alone(teacher_run):
    run, teacher = teacher_run
    student = net(4, head="two_class")           # a (128, 2) head where the teacher has (128, 1)
    fresh_head = weights_of(student, "logits")
    report = initialise(student, str(run / "fold1" / "model.keras"), "all", fold=0,
                        build_like=None)
    assert same(weights_of(student, "logits"), fresh_head)
    skipped = dict(report.skipped)
    assert "shapes [(128, 2), (2,)] here, [(128, 1), (1,)] in the source" == skipped["logits"]
    assert same(weights_of(student, "backbone"), weights_of(teacher, "backbone"))


def test_a_weights_file_must_come_from_the_same_architecture(teacher_run):
    run, teacher = teacher_run
    weights = str(run / "fold1" / "net.weights.h5")
    student = net(5)
    initialise(student, weights, "all", fold=0, build_like=lambda: net(6))
    for a, b in zip(student.weights, teacher.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    with pytest.raises(InitFromError, match="does not fit the network .* same architecture"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns of the layers it skips before it raises
        initialise(net(7, head="two_class"), weights, "all", fold=0,
                   build_like=lambda: net(8, head="two_class"))


def test_sources_that_name_nothing_usable_are_refused(teacher_run, tmp_path):
    run, _ = teacher_run
    with pytest.raises(InitFromError, match="holds neither fold3/model.keras .* it has \\['fold1'\\]"):
        resolve_source(str(run), 3)
    with pytest.raises(InitFromError, match="no such file or folder"):
        resolve_source(str(tmp_path / "nowhere"), 0)
    with pytest.raises(InitFromError, match="no such file"):
        resolve_source(str(tmp_path / "missing.keras"), 0)
    import keras

    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="unrelated")])
    other.save(tmp_path / "other.keras")
    with pytest.raises(InitFromError, match="nothing in .*other.keras fits the network"):
        initialise(net(9), str(tmp_path / "other.keras"), "all", fold=0, build_like=None)


def test_init_settings_are_validated():
    assert TrainConfig(init_from="runs/teacher", init_scope="backbone").init_scope == "backbone"
    with pytest.raises(ValueError, match="init_scope = 'backbone' needs train.init_from"):
        TrainConfig(init_scope="backbone")
    with pytest.raises(ValueError, match="init_from is an empty string"):
        TrainConfig(init_from=" ")

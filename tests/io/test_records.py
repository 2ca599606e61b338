"""The record schema: lossless encode/parse, static shapes, clear errors on mismatched shapes."""

import numpy as np
import pytest
import tensorflow as tf

from harness import random_cadence
from tfseti.io import records


def _bits(array) -> np.ndarray:
    return np.asarray(array).view(np.uint16)


def _cadence_with_specials(rng):
    cadence = random_cadence(rng)
    # Values a lossy encoder would mangle: subnormals, the float16 extremes, signed zero.
    cadence[0, 0, :4] = np.array([6e-8, -6e-8, 65504.0, -0.0], dtype=np.float16)
    return cadence


def test_round_trip_is_bit_exact():
    cadence = _cadence_with_specials(np.random.default_rng(0))
    parsed = records.parse_example(tf.constant(records.encode_example("0123456789abcde", cadence, 1, 3)))
    np.testing.assert_array_equal(_bits(parsed["cadence"].numpy()), _bits(cadence))
    assert parsed["cadence"].dtype == tf.float16
    assert parsed["id"].numpy() == b"0123456789abcde"
    assert int(parsed["target"]) == 1 and int(parsed["fold"]) == 3


def test_unlabeled_defaults_and_dynamic_shape_for_on_panels():
    on = random_cadence(np.random.default_rng(1), records.PANELS_SHAPES["on"])
    parsed = records.parse_example(tf.constant(records.encode_example("0123456789abcde", on)))
    assert tuple(parsed["cadence"].shape) == (3, 273, 256)
    assert int(parsed["target"]) == -1 and int(parsed["fold"]) == -1


def test_static_shape_inside_dataset_map():
    rng = np.random.default_rng(2)
    cadences = [random_cadence(rng) for _ in range(3)]
    serialized = [records.encode_example(f"{i:015x}", c, i % 2, i) for i, c in enumerate(cadences)]
    shape = records.PANELS_SHAPES["all"]
    dataset = tf.data.Dataset.from_tensor_slices(serialized).map(
        lambda s: records.parse_example(s, shape))
    assert dataset.element_spec["cadence"].shape == shape
    for got, want in zip(dataset, cadences):
        np.testing.assert_array_equal(_bits(got["cadence"].numpy()), _bits(want))


def test_parse_batch_matches_single_parse():
    rng = np.random.default_rng(3)
    cadences = [random_cadence(rng) for _ in range(2)]
    serialized = [records.encode_example(f"{i:015x}", c, i, 0) for i, c in enumerate(cadences)]
    batch = records.parse_batch(tf.constant(serialized), records.PANELS_SHAPES["all"])
    np.testing.assert_array_equal(_bits(batch["cadence"].numpy()), _bits(np.stack(cadences)))
    assert list(batch["target"].numpy()) == [0, 1]


def test_shape_mismatch_names_expected_shape():
    on = random_cadence(np.random.default_rng(4), records.PANELS_SHAPES["on"])
    serialized = tf.constant(records.encode_example("0123456789abcde", on))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"expected \(6, 273, 256\)"):
        records.parse_example(serialized, records.PANELS_SHAPES["all"])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"expected \(6, 273, 256\)"):
        records.parse_batch(tf.stack([serialized]), records.PANELS_SHAPES["all"])


@pytest.mark.parametrize("bad", [np.zeros((6, 273, 256), np.float32), np.zeros((273, 256), np.float16)])
def test_encode_rejects_wrong_dtype_or_rank(bad):
    with pytest.raises(ValueError, match="expected a 3-D float16 array"):
        records.encode_example("0123456789abcde", bad)


# -- schema v2: soft targets and their source ----------------------------------------------------
def test_soft_target_records_parse_to_their_soft_target_and_source():
    cadence = random_cadence(np.random.default_rng(3))
    serialized = records.encode_example("0123456789abcde", cadence, soft_target=0.3,
                                        source="pseudo:runs/teacher")
    parsed = records.parse_example(tf.constant(serialized))
    assert parsed["target"].dtype == tf.float32
    assert float(parsed["target"]) == pytest.approx(0.3)
    assert int(parsed["label"]) == 0            # the hard class a manifest counts
    assert parsed["source"].numpy() == b"pseudo:runs/teacher"
    example = tf.train.Example.FromString(serialized)
    assert example.features.feature["version"].int64_list.value == [records.SOFT_SCHEMA_VERSION]
    np.testing.assert_array_equal(_bits(parsed["cadence"].numpy()), _bits(cadence))
    high = records.parse_example(tf.constant(records.encode_example("0123456789abcde", cadence,
                                                                   soft_target=0.5)))
    assert int(high["label"]) == 1 and float(high["target"]) == 0.5


def test_v1_and_v2_records_parse_together_in_one_batch():
    rng = np.random.default_rng(4)
    batch = [records.encode_example("000000000000001", random_cadence(rng), target=1, fold=2),
             records.encode_example("000000000000002", random_cadence(rng), soft_target=0.25),
             records.encode_example("000000000000003", random_cadence(rng), target=0, fold=1)]
    parsed = records.parse_batch(tf.constant(batch), (6, 273, 256))
    np.testing.assert_allclose(parsed["target"].numpy(), [1.0, 0.25, 0.0])
    assert list(parsed["source"].numpy()) == [b"", b"", b""]
    assert parsed["target"].dtype == tf.float32


@pytest.mark.parametrize("soft", [-0.1, 1.5, float("nan")])
def test_a_soft_target_outside_the_unit_interval_is_refused(soft):
    cadence = random_cadence(np.random.default_rng(5))
    with pytest.raises(ValueError, match="soft_target must be in \\[0, 1\\]"):
        records.encode_example("0123456789abcde", cadence, soft_target=soft)


def test_readers_accept_schema_1_and_2_and_refuse_others():
    from tfseti.io.shards import manifest_problems

    doc = {"format": "tfseti-tfrecords", "complete": True, "cadence_dtype": "float16",
           "cadence_shape": [6, 273, 256], "shards": [], "num_records": 0, "num_shards": 0,
           "counts": {"classes": {}, "folds": {}}}
    for version in (1, 2):
        problems, fatal = manifest_problems({**doc, "schema_version": version})
        assert not fatal and not any("schema_version" in p for p in problems)
    problems, fatal = manifest_problems({**doc, "schema_version": 3})
    assert fatal and "reads versions [1, 2]" in problems[0]

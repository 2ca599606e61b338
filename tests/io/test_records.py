"""The record schema: lossless encode/parse, static shapes, clear errors on mismatched shapes."""

import numpy as np
import pytest
import tensorflow as tf

from support import random_cadence
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

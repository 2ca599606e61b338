"""Which unlabelled records become pseudo-labelled training records (no TensorFlow)."""

import numpy as np
import pytest

from tfseti.pseudo.selection import Selection, parse_selection, training_targets

PROBS = np.array([0.9, 0.1, 0.5, 0.95, 0.02, 0.6, 0.3, 0.97])


def test_all_keeps_every_record_with_its_soft_target():
    selection = parse_selection("all")
    assert selection.choose(PROBS).all()
    np.testing.assert_array_equal(training_targets(PROBS, hard=False), PROBS)


def test_confident_takes_the_most_confident_of_each_side():
    selection = parse_selection("confident:2,3")
    assert str(selection) == "confident:2,3"
    chosen = selection.choose(PROBS)
    # the two highest (0.97, 0.95) and the three lowest (0.02, 0.1, 0.3)
    assert sorted(PROBS[chosen].tolist()) == [0.02, 0.1, 0.3, 0.95, 0.97]
    with pytest.raises(ValueError, match="asks for 9 records, the unlabelled set has 8"):
        parse_selection("confident:5,4").choose(PROBS)


def test_threshold_keeps_both_tails():
    chosen = parse_selection("threshold:0.2,0.9").choose(PROBS)
    assert sorted(PROBS[chosen].tolist()) == [0.02, 0.1, 0.9, 0.95, 0.97]


def test_hard_targets_are_the_rounded_probability():
    np.testing.assert_array_equal(training_targets(PROBS, hard=True),
                                  [1, 0, 1, 1, 0, 1, 0, 1])


@pytest.mark.parametrize("text, message", [
    ("most", "expected all | confident:NPOS,NNEG | threshold:LO,HI"),
    ("confident:5", "expected all"),
    ("confident:a,b", "expected all"),
    ("confident:0,0", "not both 0"),
    ("confident:-1,4", ">= 0"),
    ("threshold:0.9,0.1", "0 <= LO < HI <= 1"),
    ("threshold:0.1,1.5", "0 <= LO < HI <= 1"),
    ("all:3", "expected all"),
])
def test_malformed_selections_name_the_expected_forms(text, message):
    with pytest.raises(ValueError, match=message.replace("|", "\\|")):
        parse_selection(text)


def test_selection_prints_as_it_parses():
    for text in ("all", "confident:5000,5000", "threshold:0.05,0.95"):
        assert str(parse_selection(text)) == text
    assert Selection("threshold", low=0.1, high=0.8) == parse_selection("threshold:0.1,0.8")

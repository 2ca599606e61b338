"""``tfseti.noisy_student``'s table scores every round's predictions of the unlabelled set against
its synthetic truth through ``tfseti.evaluate`` (no training here: hand-written files)."""

from __future__ import annotations

import argparse
import json

import pytest

from tfseti import noisy_student
from tfseti.evaluate import EvaluationError


def _loop(tmp_path, final_ids=("a", "b", "c", "d")):
    data, out = tmp_path / "kaggle", tmp_path / "loop"
    data.mkdir()
    (data / "truth.csv").write_text("id,target,split,family,snr\nt,1,train,linear,20\n"
                                    "a,1,test,linear,20\nb,0,test,,\nc,1,test,sine,30\nd,0,test,,\n")
    (out / "pseudo0").mkdir(parents=True)
    (out / "pseudo0" / "manifest.json").write_text(json.dumps(
        {"pseudo": {"chosen": 4, "mean_target": 0.5}}))
    (out / "pseudo0" / "predictions.csv").write_text(
        "id,probability\na,0.9\nb,0.2\nc,0.1\nd,0.3\n")          # c below b and d: AUC 0.5
    (out / "round1").mkdir()
    scores = {"a": 0.9, "b": 0.1, "c": 0.8, "d": 0.2}
    (out / "round1" / "unlabelled.csv").write_text(
        "id,target\n" + "".join(f"{i},{scores[i]}\n" for i in final_ids))
    return argparse.Namespace(unlabelled=str(data), out=str(out), rounds=1, fold="0", teacher=None)


def test_every_round_scored_against_the_test_truth(tmp_path):
    rows = noisy_student.table(_loop(tmp_path))
    assert [r["unlabelled_auc"] for r in rows] == [0.5, 1.0]
    assert rows[0]["pseudo_records"] == 4 and rows[1]["validation_auc"] is None


def test_predictions_missing_an_id_are_an_error(tmp_path):
    with pytest.raises(EvaluationError, match=r"unlabelled.csv: 1 id\(s\) of the truth missing"):
        noisy_student.table(_loop(tmp_path, final_ids=("a", "b", "c")))

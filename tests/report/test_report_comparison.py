"""The report's model-against-classical table and AUC breakdown on ``tfseti.evaluate``: exact AUCs
on a hand-made out-of-fold table, the paired difference and its interval, undefined groups."""

import numpy as np
import pandas as pd

from tfseti.report.classical import comparison
from tfseti.report.metrics import breakdown

OOF = pd.DataFrame({"id": list("abcdefgh"), "fold": 0, "target": [1, 1, 1, 1, 0, 0, 0, 0],
                    "score": [0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4]})
TRUTH = pd.DataFrame({"id": list("abcdefg"), "target": [1, 1, 1, 1, 0, 0, 0],
                      "family": ["linear", "linear", "sine", "sine", "", "", ""],
                      "snr": [10.0, 10.0, 40.0, 40.0, np.nan, np.nan, np.nan]})


def test_comparison_rows_with_paired_difference():
    classical = OOF.assign(score=[0.9, 0.8, 0.05, 0.06, 0.1, 0.2, 0.3, 0.4])  # misses the sines
    table = comparison(OOF, classical, TRUTH, n_boot=200, seed=0).set_index("group")
    assert list(table.index) == ["all", "family linear", "family sine", "SNR 10", "SNR 40"]
    assert table.loc["all", "positives"] == 4 and table.loc["all", "negatives"] == 4  # every oof row
    assert table.loc["family sine", "negatives"] == 3                           # those in the truth
    assert table.loc["family sine", "model"] == 1.0 and table.loc["family sine", "classical"] == 0.0
    assert table.loc["family sine", "difference"] == 1.0
    low, high = table.loc["all", "interval"]
    assert low <= table.loc["all", "difference"] == 0.5 <= high


def test_breakdown_one_class_is_undefined():
    oof = OOF[OOF.target == 1]
    result = breakdown(oof, TRUTH)
    assert list(result.families["family"]) == ["linear", "sine"]
    assert result.families["auc"].isna().all() and result.families["negatives"].eq(0).all()
    assert result.matched == 4 and result.unmatched == 0
    assert "one group per SNR value" in result.snr_rule

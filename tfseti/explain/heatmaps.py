"""Grad-CAM of cadences with one fold's network: the view made exactly as in training
(``make_view`` with the fold's view config, on cadences in the fold's ``data.cadence_dtype``),
the heat mapped back onto the waterfall or the drift-rate maps (:mod:`tfseti.explain.panels`),
PNGs and a CSV of the peaks."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from tfseti.explain import plots
from tfseti.explain.panels import DEDOPPLER, PanelHeat, map_heat

CSV_COLUMNS = ("id", "fold", "score", "view", "layer", "panel", "row", "channel", "drift_rate",
               "image")
BATCH = 8  # cadences per Grad-CAM pass (one full-resolution ON view: 819 x 256)


@dataclass
class Explanation:
    """One cadence's Grad-CAM: ``score`` is the network's positive-class log-odds on it;
    ``drift_rate`` (channels per row) is the peak's row on the drift maps of a ``dedoppler``
    view (None otherwise); ``image`` the PNG's file name once drawn."""

    id: str
    fold: int
    score: float
    view: str
    layer: str
    heat: PanelHeat
    drift_rate: float | None = None
    image: str = ""


def heat_note(view_name: str) -> str:
    """What the heat is drawn over, for a caption."""
    return {
        "on": "heat over the waterfall; the view shows the model the ON panels only, so the "
              "OFF panels have none",
        "on_off": "heat over the waterfall; each OFF panel shares the heat of the ON panel "
                  "beside it in the view (channel 1 beside channel 0)",
        "all": "heat over the waterfall (all six panels are in the view)",
        DEDOPPLER: "heat over the de-Doppler drift-rate maps the dedoppler view gives the model "
                   "(drift rate down, channel across), not over the waterfall",
    }.get(view_name, "heat over the view")


def describe_peak(explanation: Explanation) -> str:
    if explanation.heat.peak is None:
        return "no heat: no place raised the score (the CAM is zero everywhere)"
    panel, row, channel = explanation.heat.peak
    if explanation.heat.on_maps:
        return (f"peak at drift {explanation.drift_rate:+.3f} channels/row (index {row}), "
                f"channel {channel}")
    return f"peak in panel {panel}, row {row}, channel {channel}"


def explain_cadences(net, network, cadences: dict[str, np.ndarray],
                     batch: int = BATCH) -> list[Explanation]:
    """Grad-CAM of ``net`` (the loaded network of ``network``, a
    :class:`~tfseti.explain.networks.FoldNetwork`) for each cadence ``(P, T, F)`` of
    ``cadences``, in their order."""
    import tensorflow as tf

    from tfseti.data.drift_sums import drift_rates
    from tfseti.data.views import make_view
    from tfseti.explain.gradcam import GradCamNetwork

    view = network.view
    explainer = GradCamNetwork(net)
    rates = drift_rates(view.dedoppler) if view.name == DEDOPPLER else None
    ids = list(cadences)
    explanations = []
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        stacked = np.stack([np.asarray(cadences[i]) for i in chunk])
        images = make_view(tf.cast(tf.constant(stacked), network.cadence_dtype), view)
        result = explainer(images)
        for index, cadence_id in enumerate(chunk):
            heat = map_heat(result.heat[index], view, stacked.shape[1:])
            explanations.append(Explanation(
                id=cadence_id, fold=network.fold, score=float(result.scores[index]),
                view=view.name, layer=result.layer, heat=heat,
                drift_rate=(None if rates is None or heat.peak is None
                            else float(rates[heat.peak[1]]))))
    return explanations


def draw(explanation: Explanation, cadence: np.ndarray, view, title: str, path: str) -> str:
    """The PNG of one explanation: the waterfall under its heat, or (``dedoppler`` view) the
    cadence's drift-rate maps under it."""
    if not explanation.heat.on_maps:
        return plots.waterfall(cadence, title, path, heat=explanation.heat.heat,
                               peak=explanation.heat.peak)
    import tensorflow as tf

    from tfseti.data.drift_sums import dedoppler, drift_rates

    maps = dedoppler(tf.cast(tf.constant(np.asarray(cadence)[None]), tf.float32),
                     view.dedoppler).numpy()[0]                                  # (P, D, F)
    return plots.drift_maps(maps, explanation.heat.heat, drift_rates(view.dedoppler), title,
                            path, peak=explanation.heat.peak)


def write_csv(explanations: list[Explanation], path: str) -> str:
    """``CSV_COLUMNS``, one row per explanation; ``panel`` is empty on drift maps and
    ``drift_rate`` on waterfalls; the whole peak is empty when the heat is zero everywhere."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for e in explanations:
            panel, row, channel = e.heat.peak or (None, "", "")
            writer.writerow([e.id, e.fold, repr(e.score), e.view, e.layer,
                             "" if panel is None else panel, row, channel,
                             "" if e.drift_rate is None else repr(e.drift_rate), e.image])
    os.replace(tmp, path)
    return path

"""The report's figures, written as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

# The waterfall drawing is shared with tfseti.explain (which adds a heat overlay).
from tfseti.explain.plots import waterfall  # noqa: E402,F401
from tfseti.metrics import auc, is_defined  # noqa: E402

DPI = 80
__all__ = ["training_curves", "roc_curves", "roc_versus", "reliability_diagram", "waterfall"]


def _save(fig, path: str) -> str:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def training_curves(logs: dict[int, "object"], path: str) -> str:
    """Loss and validation AUC against epoch, one line per fold (``logs``: fold -> log.csv)."""
    fig, (ax_loss, ax_auc) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for fold, log in sorted(logs.items()):
        epochs = log["epoch"].to_numpy() + 1
        line = None
        if "loss" in log:
            (line,) = ax_loss.plot(epochs, log["loss"], marker="o", label=f"fold {fold} train")
        if "val_loss" in log:
            ax_loss.plot(epochs, log["val_loss"], marker="x", linestyle="--",
                         color=None if line is None else line.get_color(), label=f"fold {fold} val")
        if "val_auc" in log:
            ax_auc.plot(epochs, log["val_auc"], marker="o", label=f"fold {fold}")
    ax_loss.set(title="loss", xlabel="epoch")
    ax_auc.set(title="validation AUC (whole fold)", xlabel="epoch", ylim=(0.0, 1.02))
    epochs = sorted({int(e) + 1 for log in logs.values() for e in log["epoch"]})
    for ax in (ax_loss, ax_auc):
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return _save(fig, path)


def roc_curves(oof, path: str) -> str:
    """ROC of every fold with both classes, and of all out-of-fold predictions together."""
    fig, ax = plt.subplots(figsize=(5.2, 5), layout="constrained")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    for fold, rows in sorted(oof.groupby("fold")):
        value = auc(rows["target"], rows["score"])
        if not is_defined(value):
            ax.plot([], [], " ", label=f"fold {fold}: AUC undefined (one class)")
            continue
        fpr, tpr, _ = roc_curve(rows["target"], rows["score"])
        ax.plot(fpr, tpr, linewidth=1.2, label=f"fold {fold}: AUC {value:.4f}")
    value = auc(oof["target"], oof["score"])
    if is_defined(value) and oof["fold"].nunique() > 1:
        fpr, tpr, _ = roc_curve(oof["target"], oof["score"])
        ax.plot(fpr, tpr, color="black", linewidth=2.2, label=f"out-of-fold: AUC {value:.4f}")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01),
           title="ROC")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def roc_versus(curves: dict, path: str, title: str) -> str:
    """ROC curves of several scorers on the same records (``{label: (target, score)}``)."""
    fig, ax = plt.subplots(figsize=(5.2, 5), layout="constrained")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    for label, (target, score) in curves.items():
        value = auc(target, score)
        if not is_defined(value):
            ax.plot([], [], " ", label=f"{label}: AUC undefined (one class)")
            continue
        fpr, tpr, _ = roc_curve(target, score)
        ax.plot(fpr, tpr, linewidth=1.8, label=f"{label}: AUC {value:.4f}")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01),
           title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def reliability_diagram(panels: dict, path: str, bins: int) -> str:
    """Reliability diagrams, one column per ``{title: {label: (reliability table, ECE)}}`` (the
    tables of ``tfseti.calibrate.reliability``): per probability bin the fraction of positives
    against the mean predicted probability, one line per label, the diagonal for perfect
    calibration; below, the rows per bin (log scale)."""
    columns = max(1, len(panels))
    fig, axes = plt.subplots(2, columns, figsize=(5.0 * columns, 6.6), layout="constrained",
                             height_ratios=(3, 1.2), sharex=True, squeeze=False)
    for column, (title, curves) in enumerate(panels.items()):
        ax, ax_count = axes[0, column], axes[1, column]
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1,
                label="perfectly calibrated")
        width = 1.0 / bins / (len(curves) + 1)
        for k, (label, (table, ece)) in enumerate(curves.items()):
            filled = [row for row in table if row["count"]]
            shown = f"{label}: ECE {ece:.4f}" if is_defined(ece) else label
            (line,) = ax.plot([row["mean_probability"] for row in filled],
                              [row["positive_fraction"] for row in filled], marker="o",
                              linewidth=1.5, markersize=4, label=shown)
            ax_count.bar([row["lower"] + (k + 0.5) * width for row in table],
                         [row["count"] for row in table], width=width, color=line.get_color(),
                         align="edge")
        ax.set(ylabel="fraction of positives", xlim=(0, 1), ylim=(-0.02, 1.02),
               title=f"{title} ({bins} equal-width bins)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
        ax_count.set(xlabel="predicted probability", ylabel="rows")
        if any(row["count"] for table, _ in curves.values() for row in table):
            ax_count.set_yscale("log")
        ax_count.grid(alpha=0.3)
    return _save(fig, path)

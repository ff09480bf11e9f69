"""Matplotlib figures people look at instead of reading tables: data balance, image stats, curves, confusion."""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # Figure objects, not pyplot: no GUI backend, and notebooks display them

from emotion.data.labels import CLASS_NAMES


def class_distribution(counts: pd.DataFrame) -> Figure:
    """Grouped bars of image counts per class (rows) and split (columns)."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    counts.loc[list(CLASS_NAMES)].plot.bar(ax=ax, rot=0)
    ax.set(title="Images per class and split", ylabel="images")
    return fig


def image_stats(stats: pd.DataFrame, splits: pd.Series) -> Figure:
    """Histograms of brightness, contrast and sharpness per split: a blurred split stands out at once."""
    fig = Figure(figsize=(12, 3.5), layout="constrained")
    axes = fig.subplots(1, len(stats.columns))
    for ax, column in zip(axes, stats.columns):
        values = np.log10(stats[column] + 1) if column == "sharpness" else stats[column]
        for split in pd.unique(splits):
            ax.hist(values[(splits == split).to_numpy()], bins=50, histtype="step", density=True, label=split)
        ax.set(title=f"log10 {column}" if column == "sharpness" else column)
    axes[0].legend()
    return fig


def training_curves(history: pd.DataFrame) -> Figure:
    """Loss, accuracy and learning rate per epoch, train against validation."""
    fig = Figure(figsize=(13, 3.5), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, metric in zip(axes[:2], ("loss", "accuracy")):
        ax.plot(history["epoch"], history[metric], label="train")
        ax.plot(history["epoch"], history[f"val_{metric}"], label="validation")
        if f"val_ema_{metric}" in history:  # train.ema: the moving average of the weights, which is saved
            ax.plot(history["epoch"], history[f"val_ema_{metric}"], label="validation, weights' moving average")
        ax.set(title=metric, xlabel="epoch")
        ax.legend()
    axes[2].plot(history["epoch"], history["learning_rate"])
    axes[2].set(title="learning rate", xlabel="epoch", yscale="log")
    return fig


def reliability_diagram(tables: dict[str, pd.DataFrame]) -> Figure:
    """Accuracy against confidence per bin (calibration.reliability), one line per named table, beside the
    diagonal of perfect calibration; the faces per bin below."""
    fig = Figure(figsize=(6.5, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    for name, table in tables.items():
        top.plot(table["confidence"], table["accuracy"], marker="o", label=name)
        bottom.bar((table["low"] + table["high"]) / 2, table["faces"], width=table["high"] - table["low"], alpha=0.5,
                   label=name)
    top.set(title="Reliability", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    top.legend()
    bottom.set(xlabel="confidence (top-class probability)", ylabel="faces")
    return fig


def confusion_matrices(counts: np.ndarray) -> Figure:
    """The confusion matrix as counts and row-normalised (recall per true class), side by side."""
    normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(13, 5.5), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, matrix, fmt, title in ((axes[0], counts, "d", "counts"), (axes[1], normalised, ".2f", "row-normalised")):
        ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, format(value, fmt), ha="center", va="center",
                    color="white" if normalised[i, j] > 0.5 else "black", fontsize=8)
        ax.set(title=f"Confusion matrix ({title})", xlabel="predicted", ylabel="true",
               xticks=range(len(CLASS_NAMES)), yticks=range(len(CLASS_NAMES)))
        ax.set_xticklabels(CLASS_NAMES, rotation=45, ha="right")
        ax.set_yticklabels(CLASS_NAMES)
    return fig


def save(fig: Figure, path) -> None:
    """Write a figure to a PNG."""
    fig.savefig(path, dpi=100)


def emotion_shares(table: pd.DataFrame) -> Figure:
    """One stacked horizontal bar per face track: the share of its time in each emotion."""
    shares = table.pivot(index="track", columns="emotion", values="share").reindex(columns=list(CLASS_NAMES))
    fig = Figure(figsize=(8, 1.2 + 0.5 * len(shares)), layout="constrained")
    ax = fig.subplots()
    shares.plot.barh(stacked=True, ax=ax, colormap="tab10", width=0.7, legend=False)
    ax.set(title="Share of time in each emotion per face", xlabel="share of the face's time", xlim=(0, 1))
    fig.legend(*ax.get_legend_handles_labels(), ncol=len(CLASS_NAMES), loc="outside lower center", fontsize=8)
    return fig

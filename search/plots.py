"""The report's pictures, drawn with matplotlib's Agg backend so no display is needed."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402

from search.trial_table import COMPLETED, DIVERGED, FAILED, STOPPED_EARLY  # noqa: E402

logger = logging.getLogger(__name__)

_STYLE = {
    COMPLETED: {"color": "tab:blue", "linestyle": "-", "alpha": 0.9},
    STOPPED_EARLY: {"color": "tab:gray", "linestyle": "--", "alpha": 0.6},
    DIVERGED: {"color": "tab:red", "linestyle": ":", "alpha": 0.9},
    FAILED: {"color": "tab:orange", "linestyle": ":", "alpha": 0.9},
}


def plot_forecasts(
    X: np.ndarray,
    y: np.ndarray,
    predicted: np.ndarray,
    path: Path,
    n_series: int = 6,
    history_steps: int = 30,
) -> Path:
    """Draw the last ``history_steps`` inputs, the true continuation and the forecast of a few test series."""
    n_series = min(n_series, len(X))
    columns = 3
    rows = int(np.ceil(n_series / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)

    length, horizon = X.shape[1], y.shape[1]
    history_steps = min(history_steps, length)
    history_x = np.arange(length - history_steps, length)
    future_x = np.arange(length, length + horizon)

    for index, axis in enumerate(axes.flat):
        if index >= n_series:
            axis.axis("off")
            continue
        mae = float(np.mean(np.abs(predicted[index] - y[index])))
        axis.plot(history_x, X[index, -history_steps:, 0], color="black", linewidth=1.2, label="history")
        axis.plot(future_x, y[index], "o-", color="tab:green", label="truth")
        axis.plot(future_x, predicted[index], "x--", color="tab:blue", label="forecast")
        axis.axvline(length - 0.5, color="gray", linewidth=0.8)
        axis.set_title(f"test series {index}: MAE {mae:.4f}", fontsize=9)
        axis.set_xlabel("step")
        if index == 0:
            axis.legend(fontsize=8)

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_mae_comparison(labels: list[str], maes: list[float], path: Path) -> Path:
    """Draw the test MAE of the tuned model and of each baseline as horizontal bars on a log scale."""
    figure, axis = plt.subplots(figsize=(8, 0.6 * len(labels) + 1.4))
    positions = np.arange(len(labels))
    colours = ["tab:blue"] + ["tab:gray"] * (len(labels) - 1)

    axis.barh(positions, maes, color=colours)
    for position, value in zip(positions, maes):
        axis.text(value, position, f" {value:.4f}", va="center", fontsize=9)

    axis.set_yticks(positions, labels)
    axis.invert_yaxis()
    axis.set_xscale("log")
    # Bars on a log axis start at its left edge, so the edge sits well below the
    # smallest MAE to keep bar lengths comparable.
    axis.set_xlim(min(maes) / 4, max(maes) * 3)
    axis.set_xlabel("test MAE (log scale, lower is better)")
    axis.set_title("Tuned model against the baselines on the test set")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_learning_curves(trials: pd.DataFrame, epochs: pd.DataFrame, path: Path) -> Path:
    """Draw every trial's validation MAE per epoch; early-stopped trials show as dashed grey lines."""
    figure, axis = plt.subplots(figsize=(8, 5))
    reasons = trials.set_index("trial_id")["stop_reason"].to_dict()
    labelled: set[str] = set()

    for trial_id, curve in epochs.groupby("trial_id", sort=True):
        reason = reasons.get(trial_id, COMPLETED)
        style = _STYLE.get(reason, _STYLE[COMPLETED])
        label = reason if reason not in labelled else None
        labelled.add(reason)
        axis.plot(curve["epoch"], curve["val_mae"], marker=".", label=label, **style)

    axis.set_yscale("log")
    axis.set_xlabel("epoch")
    axis.set_ylabel("validation MAE (log scale)")
    axis.set_title("Learning curves of all trials")
    axis.grid(True, which="both", alpha=0.3)
    if labelled:
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_search(trials: pd.DataFrame, path: Path) -> Path:
    """Draw each trial's best validation MAE against its learning rate, coloured by depth, sized by units."""
    figure, axis = plt.subplots(figsize=(8, 5))
    scored = trials[trials["best_val_mae"].notna()]
    depths = sorted(int(depth) for depth in scored["depth"].dropna().unique())
    colours = plt.get_cmap("viridis", max(len(depths), 1))

    for index, depth in enumerate(depths):
        subset = scored[scored["depth"] == depth]
        axis.scatter(
            subset["learning_rate"].astype(float),
            subset["best_val_mae"].astype(float),
            s=12 + subset["units"].astype(float),
            color=colours(index),
            alpha=0.75,
            edgecolor="black",
            linewidth=0.4,
            label=f"depth {depth}",
        )

    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("learning rate (log scale)")
    axis.set_ylabel("best validation MAE (log scale)")
    axis.set_title("Search: best validation MAE by learning rate and depth (marker size: units)")
    axis.grid(True, which="both", alpha=0.3)
    if depths:
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def study_from_trials(trials: pd.DataFrame, space: dict[str, optuna.distributions.BaseDistribution]) -> optuna.Study:
    """Rebuild an in-memory Optuna study whose value is each scored trial's best validation MAE."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    for row in trials.itertuples(index=False):
        if pd.isna(row.best_val_mae) or row.stop_reason in (FAILED, DIVERGED):
            continue
        params = {
            "depth": int(row.depth),
            "units": int(row.units),
            "batch_size": int(row.batch_size),
            "learning_rate": float(row.learning_rate),
        }
        study.add_trial(optuna.trial.create_trial(params=params, distributions=space, value=float(row.best_val_mae)))
    return study


def plot_param_importances(
    trials: pd.DataFrame, space: dict[str, optuna.distributions.BaseDistribution], path: Path
) -> Path | None:
    """Draw Optuna's parameter importances for the best validation MAE, or return None with too few trials."""
    study = study_from_trials(trials, space)
    if len(study.trials) < 2:
        logger.info("Parameter importances need two scored trials; this run has %d.", len(study.trials))
        return None

    try:
        axis = optuna.visualization.matplotlib.plot_param_importances(study, target_name="best val_mae")
    except (ValueError, RuntimeError) as error:
        logger.warning("Optuna could not compute parameter importances: %s", error)
        return None
    figure = axis.get_figure()
    figure.set_size_inches(8, 4)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

"""The run's report: report.md with the MAE comparison, the trial counts, the top trials and plots."""

from __future__ import annotations

import io
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from search import plots
from search.retrain import CONSTANT, NOTEBOOK, PERSISTENCE
from search.storage import RunFolder
from search.trial_table import COMPLETED, DIVERGED, FAILED, STOPPED_EARLY, TrialTables

logger = logging.getLogger(__name__)

REPORT_FILE = "report.md"
COMPARISON_PLOT = "mae_comparison.png"
FORECAST_PLOT = "forecasts.png"
CURVES_PLOT = "learning_curves.png"
SEARCH_PLOT = "search_learning_rate.png"
IMPORTANCE_PLOT = "param_importances.png"

_BASELINE_LABELS = {
    CONSTANT: "constant 0.5",
    PERSISTENCE: "persistence (repeat last input)",
    NOTEBOOK: "notebook model (4 LSTM x 20 units, 5 epochs, 500 series)",
}


def count_trials(trials: pd.DataFrame) -> dict[str, int]:
    """Count trials by how they ended."""
    reasons = trials["stop_reason"].value_counts().to_dict()
    return {
        "started": int((trials["status"] != "PENDING").sum()),
        "completed": int(reasons.get(COMPLETED, 0)),
        "stopped_early": int(reasons.get(STOPPED_EARLY, 0)),
        "failed": int(reasons.get(FAILED, 0)),
        "diverged": int(reasons.get(DIVERGED, 0)),
    }


def _fmt(value: Any, digits: int = 5) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    lines = [header, rule]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(value) for value in row) + " |")
    return "\n".join(lines)


def top_trials_table(trials: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """Return the ``top`` trials by best validation MAE, formatted for reading."""
    ranked = trials[trials["best_val_mae"].notna()].sort_values(["best_val_mae", "trial_id"]).head(top)
    return pd.DataFrame(
        {
            "trial": ranked["trial_id"],
            "depth": ranked["depth"],
            "units": ranked["units"],
            "batch_size": ranked["batch_size"],
            "learning_rate": ranked["learning_rate"].map(lambda value: f"{value:.2e}"),
            "epochs": ranked["epochs"],
            "best val_mae": ranked["best_val_mae"].map(_fmt),
            "ended": ranked["stop_reason"],
            "time (s)": ranked["training_time_s"].map(lambda value: f"{value:.1f}"),
        }
    )


def comparison_table(best: dict[str, Any]) -> pd.DataFrame:
    """Return the test MAE of the tuned model and each baseline, with the baseline's MAE over the tuned one."""
    tuned = float(best["test_mae"])
    rows = [("tuned LSTM (retrained best config)", tuned, "1.0x")]
    for key, value in best["baselines"].items():
        ratio = f"{value / tuned:.1f}x" if tuned > 0 else "n/a"
        rows.append((_BASELINE_LABELS.get(key, key), float(value), ratio))
    return pd.DataFrame(
        {
            "model": [row[0] for row in rows],
            "test MAE": [_fmt(row[1]) for row in rows],
            "MAE / tuned MAE": [row[2] for row in rows],
        }
    )


def render_markdown(best: dict[str, Any], trials: pd.DataFrame, images: dict[str, str | None]) -> str:
    """Return the text of report.md."""
    params = best["config"]
    search = best["search"]
    retrain = best["retrain"]
    counts = count_trials(trials)

    lines = [
        f"# lstm-tune report: {best['run']}",
        "",
        f"The retrained best configuration scores a test MAE of **{_fmt(best['test_mae'])}** on "
        f"{best['test_set']['n_test']} fixed test series (seed {best['test_set']['seed']}).",
        "",
        "## Best configuration",
        "",
        _markdown_table(
            pd.DataFrame(
                {
                    "depth": [params["depth"]],
                    "units": [params["units"]],
                    "batch_size": [params["batch_size"]],
                    "learning_rate": [f"{params['learning_rate']:.3e}"],
                    "trial": [best["trial_id"]],
                    "search val_mae": [_fmt(best["val_mae"])],
                }
            )
        ),
        "",
        f"Retrained on {retrain['n_train']} series for {retrain['epochs']} epochs "
        f"(best validation epoch {retrain['best_epoch']}, val_mae {_fmt(retrain['val_mae'])}) "
        f"in {retrain['wall_time_s']:.1f} s.",
        "",
        "## Test MAE against baselines",
        "",
        _markdown_table(comparison_table(best)),
        "",
        "## Search",
        "",
        f"- Trials requested: {search['trials_requested']}; started: {counts['started']}",
        f"- Completed (ran all {search['max_t']} epochs): {counts['completed']}",
        f"- Stopped early by ASHA: {counts['stopped_early']}",
        f"- Failed: {counts['failed']}",
        f"- Diverged (NaN or infinite loss): {counts['diverged']}",
        f"- Search wall time: {search['wall_time_s']:.1f} s",
        f"- Total trial training time: {float(trials['training_time_s'].sum()):.1f} s",
        "",
        "### Top trials",
        "",
        _markdown_table(top_trials_table(trials)),
        "",
        "## Plots",
        "",
    ]

    captions = {
        COMPARISON_PLOT: "Test MAE of the tuned model and the baselines",
        FORECAST_PLOT: "Forecasts of the retrained model on test series",
        CURVES_PLOT: "Validation MAE per epoch of every trial (dashed grey: stopped early by ASHA)",
        SEARCH_PLOT: "Best validation MAE by learning rate and depth",
        IMPORTANCE_PLOT: "Parameter importances (Optuna, PED-ANOVA) for the best validation MAE",
    }
    for name, caption in captions.items():
        if images.get(name):
            lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    return "\n".join(lines)


def write_tables(folder: RunFolder, tables: TrialTables) -> None:
    """Write results.csv, results.parquet and trial_epochs.parquet, each atomically."""
    folder.write_text(tables.trials.to_csv(index=False), "results.csv")

    buffer = io.BytesIO()
    tables.trials.to_parquet(buffer, index=False)
    folder.write_bytes(buffer.getvalue(), "results.parquet")

    buffer = io.BytesIO()
    tables.epochs.to_parquet(buffer, index=False)
    folder.write_bytes(buffer.getvalue(), "trial_epochs.parquet")


def write_report(
    folder: RunFolder,
    best: dict[str, Any],
    tables: TrialTables,
    space: dict[str, optuna.distributions.BaseDistribution],
    forecast_inputs: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> str:
    """Draw the plots, write report.md into the run folder and return its location."""
    images: dict[str, str | None] = {}
    with tempfile.TemporaryDirectory(prefix="lstm-tune-report-") as scratch:
        scratch_path = Path(scratch)

        comparison = comparison_table(best)
        images[COMPARISON_PLOT] = str(
            plots.plot_mae_comparison(
                list(comparison["model"]),
                [float(best["test_mae"]), *(float(value) for value in best["baselines"].values())],
                scratch_path / COMPARISON_PLOT,
            )
        )
        if forecast_inputs is not None:
            X, y, predicted = forecast_inputs
            images[FORECAST_PLOT] = str(plots.plot_forecasts(X, y, predicted, scratch_path / FORECAST_PLOT))
        if not tables.epochs.empty:
            images[CURVES_PLOT] = str(plots.plot_learning_curves(tables.trials, tables.epochs, scratch_path / CURVES_PLOT))
        images[SEARCH_PLOT] = str(plots.plot_search(tables.trials, scratch_path / SEARCH_PLOT))
        importance = plots.plot_param_importances(tables.trials, space, scratch_path / IMPORTANCE_PLOT)
        images[IMPORTANCE_PLOT] = str(importance) if importance else None

        for name, local in images.items():
            if local:
                folder.upload(Path(local), name)

    return folder.write_text(render_markdown(best, tables.trials, images), REPORT_FILE)

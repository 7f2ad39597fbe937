"""Reading a stored run: its configuration, results table and report inputs."""

from __future__ import annotations

import io
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from search.config import Config, ConfigError
from search.pipeline import BEST_FILE, CONFIG_FILE, MODEL_FILE, read_stored_config
from search.storage import RunFolder, is_uri
from search.trial_table import COLUMNS, TrialTables, read_trial_tables

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredRun:
    """A run folder and the configuration it ran with."""

    folder: RunFolder
    config: Config

    def has_live_state(self) -> bool:
        return any(name.startswith("experiment_state-") for name in self.folder.list_files())

    def tables(self) -> TrialTables:
        """Read the tables from Ray Tune's files when present, else from the stored Parquet files.

        A run stopped before Ray Tune saved any state has neither, and gets empty tables.
        """
        if self.has_live_state() or not self.folder.exists("results.parquet"):
            return read_trial_tables(self.folder, self.config.asha.max_t)
        trials = pd.read_parquet(io.BytesIO(self.folder.read_bytes("results.parquet")))
        epochs = pd.read_parquet(io.BytesIO(self.folder.read_bytes("trial_epochs.parquet")))
        return TrialTables(trials=trials, epochs=epochs)

    def trials(self) -> pd.DataFrame:
        return self.tables().trials


def open_run(location: str) -> StoredRun:
    """Open a run folder written by ``lstm-tune search``.

    Raises:
        ConfigError: If the location is not a folder or contains no run.
    """
    try:
        folder = RunFolder(location)
        is_folder = folder.is_dir()
        has_config = is_folder and folder.exists(CONFIG_FILE)
    except (OSError, ValueError) as error:
        raise ConfigError(f"RUN: cannot open '{location}': {error}.") from None

    if not is_folder:
        raise ConfigError(f"RUN: '{location}' is not a folder; pass STORAGE/NAME of a run made by 'lstm-tune search'.")
    if not has_config:
        raise ConfigError(
            f"RUN: '{location}' is not a run folder (no {CONFIG_FILE} inside); "
            "pass STORAGE/NAME of a run made by 'lstm-tune search'."
        )
    return StoredRun(folder=folder, config=read_stored_config(folder, "RUN"))


def format_results(trials: pd.DataFrame, sort: str, top: int | None, output_format: str) -> str:
    """Sort, cut and format the results table.

    Raises:
        ConfigError: If ``sort`` is not a column of the table.
    """
    if sort not in trials.columns:
        raise ConfigError(f"--sort: got '{sort}', expected one of {', '.join(COLUMNS)}.")
    ordered = trials.sort_values([sort, "trial_id"], na_position="last", kind="stable").reset_index(drop=True)
    if top is not None:
        ordered = ordered.head(top)

    if output_format == "csv":
        return ordered.to_csv(index=False)
    if output_format == "json":
        return ordered.to_json(orient="records", indent=2) + "\n"
    if output_format == "markdown":
        from search.report import _markdown_table

        return _markdown_table(ordered.astype(str)) + "\n"
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 60):
        return ordered.to_string(index=False) + "\n"


def rebuild_report(run: StoredRun) -> str:
    """Redraw the plots and rewrite report.md from the stored tables, best.json and model."""
    from search import report
    from search.retrain import load_test_set
    from search.searcher import optuna_space

    if not run.folder.exists(BEST_FILE):
        raise ConfigError(
            f"RUN: '{run.folder.location}' has no {BEST_FILE}, so its search has not finished; "
            "use 'lstm-tune results' to see its trials so far."
        )
    best: dict[str, Any] = json.loads(run.folder.read_text(BEST_FILE))
    tables = run.tables()

    forecast_inputs = None
    if run.folder.exists(MODEL_FILE):
        from model import forecast, load_model

        with tempfile.TemporaryDirectory(prefix="lstm-tune-model-") as scratch:
            local = run.folder.local_path(MODEL_FILE) if not is_uri(run.folder.location) else None
            if local is None:
                local = Path(scratch) / MODEL_FILE
                local.write_bytes(run.folder.read_bytes(MODEL_FILE))
            model = load_model(local)
        test = load_test_set(run.config)
        forecast_inputs = (test.X[:6], test.y[:6], forecast(model, test.X[:6]))

    return report.write_report(run.folder, best, tables, optuna_space(run.config.space), forecast_inputs)

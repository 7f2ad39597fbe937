"""The main job end to end on a real local Ray: search, tables, retrain, report and the read commands."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from tests.conftest import run_cli

EXPECTED_FILES = [
    "results.csv",
    "results.parquet",
    "trial_epochs.parquet",
    "best.json",
    "best_model.keras",
    "report.md",
    "lstm-tune.yaml",
    "forecasts.png",
    "learning_curves.png",
    "search_learning_rate.png",
    "mae_comparison.png",
]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    storage = tmp_path_factory.mktemp("storage")
    completed = run_cli("search", "--preset", "smoke", "--storage", str(storage), "--name", "smoke")
    assert completed.returncode == 0, completed.stderr[-3000:]
    return storage / "smoke", completed


def test_smoke_search_writes_every_output(smoke_run) -> None:
    folder, _ = smoke_run

    for name in EXPECTED_FILES:
        assert (folder / name).is_file(), f"{name} is missing from {sorted(p.name for p in folder.iterdir())}"
        assert (folder / name).stat().st_size > 0, f"{name} is empty"


def test_smoke_search_asha_stops_trials(smoke_run) -> None:
    folder, _ = smoke_run
    trials = pd.read_csv(folder / "results.csv")

    assert len(trials) == 8
    assert trials["trial_id"].is_unique
    assert (trials["stop_reason"] == "stopped early").sum() >= 1
    assert (trials["stop_reason"] == "completed").sum() >= 1
    # A completed trial ran max_t epochs; one stopped early ran fewer.
    assert set(trials.loc[trials["stop_reason"] == "completed", "epochs"]) == {4}
    assert (trials.loc[trials["stop_reason"] == "stopped early", "epochs"] < 4).all()
    assert trials["depth"].between(1, 4).all()
    assert trials["learning_rate"].between(1e-4, 3e-2).all()
    assert (trials["training_time_s"] > 0).all()


def test_smoke_search_parquet_matches_csv(smoke_run) -> None:
    folder, _ = smoke_run
    from_csv = pd.read_csv(folder / "results.csv", keep_default_na=False)
    from_parquet = pd.read_parquet(folder / "results.parquet")

    assert list(from_parquet.columns) == list(from_csv.columns)
    assert list(from_parquet["trial_id"]) == list(from_csv["trial_id"].astype(str))
    pd.testing.assert_series_equal(from_parquet["best_val_mae"], from_csv["best_val_mae"], check_names=False)


def test_smoke_search_best_json_keys_and_values(smoke_run) -> None:
    folder, completed = smoke_run
    best = json.loads((folder / "best.json").read_text())
    trials = pd.read_csv(folder / "results.csv")

    assert {"config", "val_mae", "test_mae", "baselines"} <= set(best)
    assert set(best["config"]) == {"depth", "units", "batch_size", "learning_rate"}
    assert best["val_mae"] == pytest.approx(trials["best_val_mae"].min())
    assert 0 < best["test_mae"] < 1
    assert set(best["baselines"]) == {"constant_0.5", "persistence"}  # the smoke preset skips the notebook model
    # On this data, always predicting 0.5 scores about 0.04.
    assert 0.02 < best["baselines"]["constant_0.5"] < 0.06
    assert f"{best['test_mae']:.5f}" in completed.stdout


def test_smoke_search_report_has_comparison_counts_and_plots(smoke_run) -> None:
    folder, _ = smoke_run
    report = (folder / "report.md").read_text()

    assert "## Test MAE against baselines" in report
    assert "constant 0.5" in report
    assert "Stopped early by ASHA:" in report
    assert "### Top trials" in report
    for image in ("mae_comparison.png", "forecasts.png", "learning_curves.png", "search_learning_rate.png"):
        assert f"]({image})" in report
        assert (folder / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_command_csv_matches_results_csv(smoke_run) -> None:
    folder, _ = smoke_run

    completed = run_cli("results", str(folder), "--format", "csv", "--sort", "trial_id")

    assert completed.returncode == 0, completed.stderr
    printed = pd.read_csv(io.StringIO(completed.stdout), keep_default_na=False)
    stored = pd.read_csv(folder / "results.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(printed, stored)


@pytest.mark.parametrize("output_format", ["table", "json", "markdown"])
def test_results_command_formats_list_every_trial(smoke_run, output_format) -> None:
    folder, _ = smoke_run
    trial_ids = pd.read_csv(folder / "results.csv")["trial_id"].astype(str)

    completed = run_cli("results", str(folder), "--format", output_format)

    assert completed.returncode == 0, completed.stderr
    for trial_id in trial_ids:
        assert trial_id in completed.stdout


def test_results_command_top_and_sort(smoke_run) -> None:
    folder, _ = smoke_run

    completed = run_cli("results", str(folder), "--format", "json", "--top", "2", "--sort", "best_val_mae")

    rows = json.loads(completed.stdout)
    assert len(rows) == 2
    assert rows[0]["best_val_mae"] <= rows[1]["best_val_mae"]


def test_report_command_rebuilds_report_without_training(smoke_run) -> None:
    folder, _ = smoke_run
    (folder / "report.md").unlink()
    (folder / "forecasts.png").unlink()

    completed = run_cli("report", str(folder))

    assert completed.returncode == 0, completed.stderr
    assert (folder / "report.md").is_file()
    assert (folder / "forecasts.png").is_file()
    assert "Retrain epoch" not in completed.stderr

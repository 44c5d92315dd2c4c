"""End to end: the calibration command as a user runs it (Hydra, files, errors)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.calibrate import determine_mode, exclude_periods

REPO = Path(__file__).resolve().parents[2]


def run_calibrate(*overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "experiments.calibrate", *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_in_sample_e0_report_passes(shared_data, tmp_path) -> None:
    """The issue's in-sample bar for E0 2022-25, with the default (full) settings."""
    result = run_calibrate(
        "league=E0",
        "fit_seasons=[2223,2324,2425]",
        "test_seasons=[2223,2324,2425]",
        f"data_dir={shared_data / 'football-data'}",
        f"out_dir={tmp_path}",
        # The market statistics have their own (slow) test in tests/market_sim.
        "market_report=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads((tmp_path / "calibration.json").read_text())
    assert document["league"] == "E0" and document["mode"] == "in_sample"
    assert document["fit_seasons"] == ["2223", "2324", "2425"]
    expected = {
        "goals_home", "goals_away", "goals_total", "share_home_win", "share_draw",
        "share_away_win", "share_goals_second_half", "share_goals_minute_86_plus",
        "goals_var_to_mean", "shots", "shots_on_target", "corners", "fouls", "yellow_cards",
        "red_cards", "corr_home_away_goals",
    }  # fmt: skip
    assert set(document["stats"]) == expected
    for row in document["stats"].values():
        assert set(row) >= {"real", "sim", "abs_err", "rel_err", "tolerance", "pass"}
    failed = [name for name, row in document["stats"].items() if not row["pass"]]
    assert document["pass"], failed
    for file in ("calibration.md", "goals_per_match.png", "goal_minutes.png", "score_matrix.png",
                 "event_counts.png", "league_model.json"):  # fmt: skip
        assert (tmp_path / file).stat().st_size > 0, file
    assert "overall: PASS" in result.stdout
    assert document["run"]["git_commit"]
    assert document["run"]["config"]["league"] == "E0"


def test_config_typo_is_an_error(tmp_path) -> None:
    result = run_calibrate("leage=E0", f"out_dir={tmp_path}")
    assert result.returncode != 0
    assert "leage" in result.stderr


def test_unknown_league_names_the_file(shared_data, tmp_path) -> None:
    result = run_calibrate(
        "league=XX9", f"data_dir={shared_data / 'football-data'}", f"out_dir={tmp_path}",
        "smm_iterations=1",
    )  # fmt: skip
    assert result.returncode != 0
    assert "XX9" in result.stderr and "valid codes" in result.stderr


def test_missing_season_is_named(shared_data, tmp_path) -> None:
    result = run_calibrate(
        "league=SP1", "fit_seasons=[1617]", "test_seasons=[1617]",
        f"data_dir={shared_data / 'football-data'}", f"out_dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode != 0
    assert "1617" in result.stderr and "SP1" in result.stderr


def test_bad_counts_and_tolerances_are_named(tmp_path) -> None:
    from experiments.calibrate import CalibrateConfig, validate_config

    with pytest.raises(ValueError, match="replications: expected an integer ≥ 1, got 0"):
        validate_config(CalibrateConfig(out_dir=str(tmp_path), replications=0))
    with pytest.raises(ValueError, match=r"tolerances_in_sample: unknown statistics \['goalz'\]"):
        validate_config(CalibrateConfig(out_dir=str(tmp_path), tolerances_in_sample={"goalz": 0.1}))
    with pytest.raises(ValueError, match="must be ≥ 0"):
        validate_config(
            CalibrateConfig(out_dir=str(tmp_path), tolerances_out_of_sample={"shots": -1.0})
        )
    validate_config(CalibrateConfig(out_dir=str(tmp_path)))


def test_mode_rules() -> None:
    assert determine_mode(["2223"], ["2223"]) == "in_sample"
    assert determine_mode(["1819", "1920"], ["2021"]) == "out_of_sample"
    with pytest.raises(ValueError, match="partial overlap"):
        determine_mode(["2122", "2223"], ["2223", "2324"])


def test_exclude_periods() -> None:
    import pandas as pd

    frame = pd.DataFrame({"date": pd.to_datetime(["2020-01-01", "2020-05-01", "2021-08-01"])})
    kept, dropped = exclude_periods(frame, [["2020-03-09", "2021-06-30"]])
    assert dropped == 1 and len(kept) == 2
    with pytest.raises(ValueError, match="every fit match"):
        exclude_periods(frame, [["2019-01-01", "2022-01-01"]])
    with pytest.raises(ValueError, match=r"\[start, end\]"):
        exclude_periods(frame, [["2019-01-01"]])

"""Calibration pieces: goal timing, statistics, structural fit, league models."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from market_sim import calibrate as cal
from market_sim import data
from market_sim.league_model import (
    LeagueModel,
    embedded_leagues,
    fixture_params,
    load_league_model,
    model_from_calibration,
    sample_fixtures,
)
from market_sim.params import make_engine_params


def test_goal_timing_recovers_known_profile() -> None:
    """Goal minutes drawn from a known profile give back its slopes and stoppage means."""
    rng = np.random.default_rng(0)
    engine = make_engine_params(
        first_half_slope=0.3,
        second_half_level=0.2,
        second_half_slope=0.15,
        stoppage_first_mean=2.0,
        stoppage_second_mean=4.0,
    )
    fraction = np.arange(1, 46) / 45
    first = np.exp(0.3 * fraction)
    second = np.exp(0.2 + 0.15 * fraction)
    weights = np.concatenate([first, second])
    weights[44] *= 1 + 2.0
    weights[89] *= 1 + 4.0
    minutes = rng.choice(np.arange(1, 91), size=400_000, p=weights / weights.sum())
    timing = cal.fit_goal_timing(minutes)
    assert timing.first_half_slope == pytest.approx(0.3, abs=0.03)
    assert timing.second_half_level == pytest.approx(0.2, abs=0.02)
    assert timing.second_half_slope == pytest.approx(0.15, abs=0.03)
    assert timing.stoppage_first_mean == pytest.approx(2.0, abs=0.1)
    assert timing.stoppage_second_mean == pytest.approx(4.0, abs=0.15)
    assert engine.goal_exposure > 90


def test_goal_timing_rejects_bad_minutes() -> None:
    with pytest.raises(ValueError, match=r"1\.\.90"):
        cal.fit_goal_timing([0, 5, 7])
    with pytest.raises(ValueError, match=r"1\.\.90"):
        cal.fit_goal_timing([])


def test_statistics_from_counts_known_values() -> None:
    counts = {
        "home_goals": np.array([1.0, 0.0, 2.0, 1.0]),
        "away_goals": np.array([0.0, 0.0, 2.0, 3.0]),
        "second_half_goals": np.array([1.0, 0.0, 2.0, 2.0]),
        "goals_86_plus": np.array([0.0, 0.0, 1.0, 0.0]),
    }
    for field in (*cal.EVENT_COLUMNS, "red_cards"):
        counts[f"home_{field}"] = np.array([10.0, 12.0, 8.0, 10.0])
        counts[f"away_{field}"] = np.array([5.0, 6.0, 4.0, np.nan])
    stats = cal.statistics_from_counts(counts)
    assert stats["goals_total"] == pytest.approx(9 / 4)
    assert stats["share_home_win"] == pytest.approx(0.25)
    assert stats["share_draw"] == pytest.approx(0.5)
    assert stats["share_away_win"] == pytest.approx(0.25)
    assert stats["share_goals_second_half"] == pytest.approx(5 / 9)
    assert stats["share_goals_minute_86_plus"] == pytest.approx(1 / 9)
    # NaN-aware event means: the match with a missing count is skipped.
    assert stats["shots"] == pytest.approx((15 + 18 + 12) / 3)


@pytest.fixture(scope="module")
def e0_fit(shared_data):
    frame = data.load_league(shared_data / "football-data", "E0", ["2425"])
    goals = data.load_goal_times(shared_data / "goal-times")
    timing = cal.fit_goal_timing(goals.loc[goals["consistent"], "minute"].to_numpy())
    calibration = cal.fit_league_calibration(
        frame, timing, league="E0", xi=0.0, key=jax.random.PRNGKey(0), replications=4,
        max_iterations=3,
    )  # fmt: skip
    return frame, timing, calibration


def test_structural_fit_moves_toward_targets(e0_fit) -> None:
    _, _, calibration = e0_fit
    fit = calibration.structure
    scaled = {
        name: abs(fit.achieved[name] - fit.targets[name]) / cal.SMM_TARGETS[name]
        for name in cal.SMM_TARGETS
    }
    # Three iterations on one season: every moment within 3 target scales.
    assert max(scaled.values()) < 3.0, scaled
    assert fit.iterations >= 1


def test_league_model_round_trip_and_fixture_params(e0_fit, tmp_path) -> None:
    frame, _, calibration = e0_fit
    model = model_from_calibration(calibration)
    path = tmp_path / "league_model.json"
    model.save(path)
    loaded = LeagueModel.load(path)
    assert loaded == model
    home = np.array([loaded.team_index(t) for t in frame["home_team"][:20]])
    away = np.array([loaded.team_index(t) for t in frame["away_team"][:20]])
    from_arrays = fixture_params(loaded.arrays(), home, away)
    from_fit = calibration.match_params(frame["home_team"][:20], frame["away_team"][:20])
    np.testing.assert_allclose(np.asarray(from_arrays.goals), np.asarray(from_fit.goals), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(from_arrays.shots), np.asarray(from_fit.shots), rtol=1e-4)
    engine = loaded.engine_params()
    assert float(engine.lead_effect) == pytest.approx(calibration.structure.values["lead_effect"])


def test_embedded_league_models_load() -> None:
    assert {"E0", "SP1", "D1", "I1", "F1"} <= set(embedded_leagues())
    model = load_league_model("E0")
    assert len(model.teams) >= 20
    with pytest.raises(ValueError, match=r"unknown league .XX.*available: .*E0"):
        load_league_model("XX")
    with pytest.raises(ValueError, match="not in the E0 model"):
        model.team_index("Atlantis FC")


def test_sample_fixtures_distinct_teams() -> None:
    keys = jax.random.split(jax.random.PRNGKey(0), 256)
    home, away = jax.vmap(lambda k: sample_fixtures(k, 20, 10))(keys)
    teams = np.concatenate([np.asarray(home), np.asarray(away)], axis=1)
    assert all(len(set(row)) == 20 for row in teams)
    with pytest.raises(ValueError, match="needs 22 distinct teams"):
        sample_fixtures(jax.random.PRNGKey(0), 20, 11)


def test_newcomer_gets_weak_strength(e0_fit) -> None:
    _, _, calibration = e0_fit
    rates = cal.predict_fixture_rates(
        calibration.rates, ["Atlantis FC", calibration.rates.teams[0]], ["Arsenal", "Arsenal"]
    )
    attack = np.asarray(calibration.rates.goals.attack)
    # The newcomer scores less at home than an average team would.
    average = np.exp(calibration.rates.goals.intercept + calibration.rates.goals.home_advantage)
    assert rates["goals"][0, 0] < average * np.exp(np.max(attack))


def test_choose_shrinkage_scores_the_last_season(shared_data) -> None:
    frame = data.load_league(shared_data / "football-data", "E0", ["2223", "2324"])
    l2, scores = cal.choose_shrinkage(frame, grid=(0.0, 10.0, 1000.0))
    assert set(scores) == {0.0, 10.0, 1000.0}
    assert scores[l2] == max(scores.values())
    # A huge prior flattens every team to the league average: clearly worse forecasts.
    assert scores[1000.0] < scores[l2] - 0.01
    one_season = frame[frame["season"] == "2324"]
    assert cal.choose_shrinkage(one_season) == (0.0, {})

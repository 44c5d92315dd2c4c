"""Dixon–Coles and log-linear rate fits: recovery on synthetic data, penaltyblog agreement."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson

from market_sim import data
from market_sim import dixon_coles as dc

needs_data = pytest.mark.skipif(
    not data.DEFAULT_DATA_DIR.is_dir(),
    reason=f"real football-data CSVs not found at {data.DEFAULT_DATA_DIR}",
)

N_TEAMS = 20


def round_robin(n_teams: int, rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair (home, away) ``rounds`` times: [rounds·n·(n−1)] indices."""
    home, away = np.meshgrid(np.arange(n_teams), np.arange(n_teams), indexing="ij")
    keep = home != away
    return np.tile(home[keep], rounds), np.tile(away[keep], rounds)


def true_parameters(rng: np.random.Generator) -> dc.DixonColesFit:
    attack = rng.normal(0.0, 0.3, N_TEAMS)
    defence = rng.normal(0.0, 0.25, N_TEAMS)
    return dc.DixonColesFit(
        attack=attack - attack.mean(),
        defence=defence - defence.mean(),
        home_advantage=0.25,
        rho=-0.12,
        intercept=0.1,
    )


def sample_scores(
    fit: dc.DixonColesFit, home: np.ndarray, away: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw scores from the exact Dixon–Coles distribution (grid to 15 goals)."""
    grids = np.asarray(dc.score_matrix(fit, home, away, max_goals=15), dtype=np.float64)
    flat = grids.reshape(len(home), -1)
    flat /= flat.sum(axis=1, keepdims=True)
    cells = (flat.cumsum(axis=1) < rng.random((len(home), 1))).sum(axis=1)
    return cells // 16, cells % 16


def test_recovers_known_parameters_from_synthetic_matches() -> None:
    rng = np.random.default_rng(7)
    truth = true_parameters(rng)
    home, away = round_robin(N_TEAMS, rounds=10)  # 3,800 matches
    x, y = sample_scores(truth, home, away, rng)
    fit = dc.fit_dixon_coles(home, away, x, y, 1.0, N_TEAMS)
    assert fit.converged and fit.gradient_norm < 1e-7 and fit.n_iterations < 20
    assert np.sum(fit.attack) == pytest.approx(0.0, abs=1e-12)
    assert np.sum(fit.defence) == pytest.approx(0.0, abs=1e-12)
    # Standard errors here: attack/defence ≈ 0.05, home ≈ 0.02, ρ ≈ 0.03.
    assert np.abs(fit.attack - truth.attack).max() < 0.2
    assert np.abs(fit.defence - truth.defence).max() < 0.2
    assert np.corrcoef(fit.attack, truth.attack)[0, 1] > 0.95
    assert fit.home_advantage == pytest.approx(0.25, abs=0.06)
    assert fit.intercept == pytest.approx(0.1, abs=0.06)
    assert fit.rho == pytest.approx(-0.12, abs=0.09)


def test_fit_is_a_maximum_of_the_weighted_likelihood() -> None:
    rng = np.random.default_rng(3)
    truth = true_parameters(rng)
    home, away = round_robin(N_TEAMS, rounds=2)
    x, y = sample_scores(truth, home, away, rng)
    weights = rng.uniform(0.2, 1.0, len(home))
    fit = dc.fit_dixon_coles(home, away, x, y, weights, N_TEAMS)

    def log_likelihood(candidate: dc.DixonColesFit) -> float:
        # NumPy float64 (``predict_rates`` follows JAX's default float32).
        attack, defence = candidate.attack, candidate.defence
        lam = np.exp(candidate.intercept + candidate.home_advantage + attack[home] + defence[away])
        mu = np.exp(candidate.intercept + attack[away] + defence[home])
        tau = np.ones_like(lam)
        tau[(x == 0) & (y == 0)] = 1 - (lam * mu * candidate.rho)[(x == 0) & (y == 0)]
        tau[(x == 0) & (y == 1)] = 1 + (lam * candidate.rho)[(x == 0) & (y == 1)]
        tau[(x == 1) & (y == 0)] = 1 + (mu * candidate.rho)[(x == 1) & (y == 0)]
        tau[(x == 1) & (y == 1)] = 1 - candidate.rho
        terms = poisson.logpmf(x, lam) + poisson.logpmf(y, mu) + np.log(tau)
        return float(np.sum(weights * terms))

    best = log_likelihood(fit)
    assert best == pytest.approx(fit.log_likelihood, rel=1e-10)
    for field, delta in [("rho", 0.01), ("home_advantage", 0.01), ("intercept", 0.01)]:
        for sign in (-1, 1):
            moved = fit.replace(**{field: getattr(fit, field) + sign * delta})
            assert log_likelihood(moved) < best
    shifted = fit.attack.copy()
    shifted[[0, 1]] += [0.01, -0.01]  # stays sum-zero
    assert log_likelihood(fit.replace(attack=shifted)) < best


def test_score_matrix_and_outcome_probabilities() -> None:
    fit = dc.DixonColesFit(
        attack=np.array([0.2, -0.2]),
        defence=np.array([-0.1, 0.1]),
        home_advantage=0.3,
        rho=-0.1,
        intercept=0.05,
    )
    lam, mu = (float(r) for r in dc.predict_rates(fit, 0, 1))
    assert lam == pytest.approx(np.exp(0.05 + 0.3 + 0.2 + 0.1))
    assert mu == pytest.approx(np.exp(0.05 - 0.2 - 0.1))
    matrix = np.asarray(dc.score_matrix(fit, 0, 1, max_goals=10))
    assert matrix.shape == (11, 11)
    independent = np.outer(poisson.pmf(np.arange(11), lam), poisson.pmf(np.arange(11), mu))
    assert matrix[0, 0] == pytest.approx(independent[0, 0] * (1 + 0.1 * lam * mu), rel=1e-5)
    assert matrix[1, 1] == pytest.approx(independent[1, 1] * 1.1, rel=1e-5)
    assert matrix[2, 3] == pytest.approx(independent[2, 3], rel=1e-5)
    # τ redistributes mass among the low scores without changing the total.
    assert np.asarray(dc.score_matrix(fit, 0, 1, max_goals=25)).sum() == pytest.approx(1, abs=1e-6)
    probabilities = np.asarray(dc.outcome_probabilities(fit, np.array([0, 1]), np.array([1, 0])))
    assert probabilities.shape == (2, 3)
    assert probabilities.sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-6)
    assert probabilities[0, 0] > probabilities[1, 0]  # the stronger team at home


def test_time_weights_match_penaltyblog_and_ignore_future_matches() -> None:
    penaltyblog = pytest.importorskip("penaltyblog")
    dates = pd.Series(pd.to_datetime(["2023-01-01", "2023-06-15", "2024-01-01"]))
    ours = dc.time_weights(dates, None, 0.0018)
    theirs = penaltyblog.models.dixon_coles_weights(dates, 0.0018)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    half_life = np.log(2) / dc.DEFAULT_XI
    assert dc.time_weights(
        pd.Series([pd.Timestamp("2024-01-01") - pd.Timedelta(days=round(half_life))]),
        "2024-01-01",
    )[0] == pytest.approx(0.5, abs=1e-3)
    assert dc.time_weights(dates, "2023-06-15")[2] == 0.0


def test_fit_log_linear_rates_recovers_synthetic_rates() -> None:
    rng = np.random.default_rng(11)
    home, away = round_robin(N_TEAMS, rounds=4)
    strength_for = rng.normal(0, 0.2, N_TEAMS)
    strength_against = rng.normal(0, 0.15, N_TEAMS)
    strength_for -= strength_for.mean()
    strength_against -= strength_against.mean()
    intercept, home_term = np.log(11.0), 0.12
    rate_home = np.exp(intercept + home_term + strength_for[home] + strength_against[away])
    rate_away = np.exp(intercept + strength_for[away] + strength_against[home])
    x = rng.poisson(rate_home).astype(float)
    y = rng.poisson(rate_away).astype(float)
    x[:5] = np.nan  # a missing statistic drops only that side of that match
    fit = dc.fit_log_linear_rates(home, away, x, y, 1.0, N_TEAMS, l2=0.0)
    assert fit.converged
    assert np.abs(fit.for_strength - strength_for).max() < 0.05
    assert np.abs(fit.against_strength - strength_against).max() < 0.05
    assert fit.home_advantage == pytest.approx(home_term, abs=0.02)
    assert fit.intercept == pytest.approx(intercept, abs=0.02)
    fitted_home, _ = dc.predict_rates(fit, home, away)
    relative_error = np.abs(np.asarray(fitted_home) / rate_home - 1)
    assert relative_error.mean() < 0.03 and relative_error.max() < 0.15


def test_rare_events_stay_finite_with_the_default_ridge() -> None:
    home, away = round_robin(6, rounds=2)
    x = np.zeros(len(home))
    y = np.zeros(len(home))
    x[home == 1] = 1.0  # only team 1 ever gets a red card, at home
    fit = dc.fit_log_linear_rates(home, away, x, y, 1.0, 6)
    assert fit.converged
    assert np.isfinite(fit.for_strength).all() and fit.for_strength.argmax() == 1


def test_bad_inputs_name_the_field() -> None:
    home, away = round_robin(4, rounds=1)
    goals = np.ones(len(home))
    with pytest.raises(ValueError, match="home_idx"):
        dc.fit_dixon_coles(home + 1, away, goals, goals, 1.0, 4)
    with pytest.raises(ValueError, match="home_counts: expected non-negative integers"):
        dc.fit_dixon_coles(home, away, goals * 1.5, goals, 1.0, 4)
    with pytest.raises(ValueError, match="weights"):
        dc.fit_dixon_coles(home, away, goals, goals, -1.0, 4)
    with pytest.raises(ValueError, match=r"teams \[4\] have no match"):
        dc.fit_dixon_coles(home, away, goals, goals, 1.0, 5)


@needs_data
def test_agrees_with_penaltyblog_on_a_real_season() -> None:
    penaltyblog = pytest.importorskip("penaltyblog")
    frame = data.load_league(data.DEFAULT_DATA_DIR, "E0", ["2223"])
    weights = penaltyblog.models.dixon_coles_weights(frame["date"], 0.0018)
    reference = penaltyblog.models.DixonColesGoalModel(
        frame["home_goals"], frame["away_goals"], frame["home_team"], frame["away_team"],
        weights=weights,
    )  # fmt: skip
    # penaltyblog's analytic gradient is slightly off (by ~0.02 against finite differences
    # in 1.13), which stops SLSQP short of the optimum; its numerical gradient gets closer.
    reference.fit(use_gradient=False)
    params = reference.get_params()

    fit, teams = dc.fit_league(frame, xi=0.0018)
    assert teams == list(reference.teams)
    assert fit.converged
    grids = reference.predict_many(list(frame["home_team"]), list(frame["away_team"]))
    index = {team: i for i, team in enumerate(teams)}
    lam, mu = dc.predict_rates(
        fit, frame["home_team"].map(index).to_numpy(), frame["away_team"].map(index).to_numpy()
    )
    their_lam = np.array([grid.home_goal_expectation for grid in grids])
    their_mu = np.array([grid.away_goal_expectation for grid in grids])
    assert np.abs(np.asarray(lam) - their_lam).max() < 2e-3
    assert np.abs(np.asarray(mu) - their_mu).max() < 2e-3
    assert fit.rho == pytest.approx(params["rho"], abs=5e-4)
    assert fit.home_advantage == pytest.approx(params["home_advantage"], abs=5e-4)
    # Same objective: our optimum is at least as good under penaltyblog's own loss.
    ours = np.concatenate(
        [fit.attack + 1.0, fit.defence + fit.intercept - 1.0, [fit.home_advantage, fit.rho]]
    )
    assert reference._loss_function(ours) <= reference._loss_function(reference._params) + 1e-9
    assert fit.log_likelihood == pytest.approx(reference.loglikelihood, abs=1e-4)


@needs_data
def test_three_seasons_fit_quickly_and_event_rates_converge() -> None:
    frame = data.load_league(data.DEFAULT_DATA_DIR, "E1", ["2122", "2223", "2324"])
    start = time.perf_counter()
    fit, teams = dc.fit_league(frame)
    elapsed = time.perf_counter() - start
    assert fit.converged and len(teams) > 30 and len(frame) == 1656
    assert elapsed < 20.0  # a couple of seconds including compilation; slack for busy CPUs
    assert 0.0 < fit.home_advantage < 0.5 and -0.3 < fit.rho < 0.2
    for home_column, away_column in [("home_shots", "away_shots"), ("home_red", "away_red")]:
        rates, _ = dc.fit_league_rates(frame, home_column, away_column)
        assert rates.converged
        assert np.isfinite(rates.for_strength).all()
    cut, cut_teams = dc.fit_league(frame, reference_date="2023-05-31")
    assert cut.converged and len(cut_teams) < len(teams)

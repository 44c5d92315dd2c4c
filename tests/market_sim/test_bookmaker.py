"""Bookmaker: remaining-goal clock, score grid, margin, liability skew."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market_sim import bookmaker, match
from market_sim.bookmaker import BookmakerProfile
from market_sim.league_model import fixture_params, load_league_model
from market_sim.margin import implied_probabilities, overround, shin_z


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    return load_league_model("E0").engine_params()


@pytest.fixture(scope="module")
def clock(engine):  # type: ignore[no-untyped-def]
    return bookmaker.make_goal_clock(engine)


def test_remaining_mass_is_whole_match_before_kick_off_and_zero_at_the_end(clock, engine):
    before = bookmaker.remaining_goal_mass(clock, 0, 0, 0)
    assert float(before) == pytest.approx(float(engine.goal_exposure), rel=1e-5)
    end = bookmaker.remaining_goal_mass(clock, 2, 90, 15)
    assert float(end) == pytest.approx(0.0, abs=1e-6)


def test_remaining_mass_decreases_through_the_match(clock):
    clock_ticks = [(1, m, 0) for m in range(1, 46)] + [(1, 45, a) for a in range(1, 4)]
    clock_ticks += [(2, m, 0) for m in range(46, 91)] + [(2, 90, a) for a in range(1, 6)]
    values = [float(bookmaker.remaining_goal_mass(clock, *t)) for t in clock_ticks]
    assert np.all(np.diff(values) < 0)


@settings(max_examples=40, deadline=None)
@given(
    home_goals=st.integers(0, 5),
    away_goals=st.integers(0, 5),
    home_mean=st.floats(0.0, 3.5),
    away_mean=st.floats(0.0, 3.5),
)
def test_outcome_probabilities_are_two_markets(home_goals, away_goals, home_mean, away_mean):
    probabilities = np.asarray(
        bookmaker.outcome_probabilities(
            jnp.array([home_goals, away_goals]), jnp.array([home_mean, away_mean])
        )
    )
    assert np.all(probabilities >= -1e-6)
    assert probabilities[:3].sum() == pytest.approx(1.0, abs=1e-5)
    assert probabilities[3:].sum() == pytest.approx(1.0, abs=1e-5)
    if home_goals + away_goals >= 3:
        assert probabilities[3] == pytest.approx(1.0, abs=1e-6)
    if home_mean == 0.0 and away_mean == 0.0:
        expected = np.sign(home_goals - away_goals)
        assert probabilities[[2, 1, 0][int(expected) + 1]] == pytest.approx(1.0, abs=1e-6)


def test_home_probability_grows_with_home_mean():
    score = jnp.array([0, 0])
    values = [
        float(bookmaker.outcome_probabilities(score, jnp.array([m, 1.2]))[0])
        for m in (0.5, 1.0, 1.5, 2.0)
    ]
    assert np.all(np.diff(values) > 0)


def test_pre_match_grid_matches_the_engine(engine):
    """The score grid with the true rates approximates the engine's outcome frequencies."""
    league = load_league_model("E0")
    params = fixture_params(league.arrays(), jnp.full(3000, 0), jnp.full(3000, 5))
    state, _ = jax.jit(match.simulate_batch)(jax.random.PRNGKey(3), params, engine)
    score = np.asarray(state.score)
    frequencies = np.array(
        [
            np.mean(score[:, 0] > score[:, 1]),
            np.mean(score[:, 0] == score[:, 1]),
            np.mean(score[:, 0] < score[:, 1]),
            np.mean(score.sum(1) >= 3),
        ]
    )
    predicted = np.asarray(bookmaker.outcome_probabilities(jnp.array([0, 0]), params.goals[0]))[:4]
    np.testing.assert_allclose(predicted, frequencies, atol=0.03)


@pytest.mark.parametrize("method", ["shin", "multiplicative", "power"])
def test_quote_has_target_overround_and_demargins_back(method):
    profile = BookmakerProfile(overround_1x2=0.05, overround_ou=0.04, margin_method=method)
    probabilities = jnp.array([[0.5, 0.3, 0.2, 0.55, 0.45], [0.1, 0.2, 0.7, 0.3, 0.7]])
    parameter = bookmaker.margin_parameters(probabilities, profile)
    odds = bookmaker.quote(probabilities, profile, parameter)
    np.testing.assert_allclose(overround(odds[:, :3]), 0.05, atol=1e-4)
    np.testing.assert_allclose(overround(odds[:, 3:]), 0.04, atol=1e-4)
    back = implied_probabilities(odds[:, :3], method)
    np.testing.assert_allclose(back, probabilities[:, :3], atol=1e-4)
    if method == "shin":
        np.testing.assert_allclose(shin_z(odds[:, :3]), parameter[:, 0], atol=1e-4)


@settings(max_examples=30, deadline=None)
@given(
    stake=st.floats(1.0, 5000.0),
    extra=st.floats(1.0, 5000.0),
    liquidity=st.floats(100.0, 20000.0),
    selection=st.integers(0, 4),
)
def test_price_impact_is_monotone_in_stake_over_liquidity(stake, extra, liquidity, selection):
    profile = BookmakerProfile()
    belief = jnp.array([0.45, 0.27, 0.28, 0.52, 0.48])
    skew = jnp.zeros(5)

    def market_probability(amount: float, depth: float) -> float:
        flow = jnp.zeros(5).at[selection].set(amount)
        new_skew = bookmaker.update_skew(skew, flow, belief, jnp.asarray(depth), profile)
        return float(bookmaker.market_probabilities(belief, new_skew)[selection])

    small = market_probability(stake, liquidity)
    large = market_probability(stake + extra, liquidity)
    deeper = market_probability(stake, liquidity * 2.0)
    assert small > float(belief[selection]) - 1e-6
    assert large >= small - 1e-6
    assert deeper <= small + 1e-6


def test_proportional_money_does_not_move_prices():
    profile = dataclasses.replace(BookmakerProfile(), skew_reversion=0.0)
    belief = jnp.array([0.45, 0.27, 0.28, 0.52, 0.48])
    flow = 1000.0 * belief
    skew = bookmaker.update_skew(jnp.zeros(5), flow, belief, jnp.asarray(5000.0), profile)
    np.testing.assert_allclose(skew, 0.0, atol=1e-6)

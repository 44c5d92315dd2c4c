"""Market: fills, depth, price impact, money conservation, settlement, validation."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from market_sim import market
from market_sim.regimes import market_params, regime_params

M = 10


@pytest.fixture(scope="module")
def params() -> market.MarketParams:
    return market_params("E0", "calm", n_matches=M)


@pytest.fixture(scope="module")
def step():  # type: ignore[no-untyped-def]
    return jax.jit(market.step)


@pytest.fixture(scope="module")
def reset():  # type: ignore[no-untyped-def]
    return jax.jit(market.reset)


#: Slates per batched episode (the same shape as in test_regimes: one compiled rollout).
SLATES = 16


@pytest.fixture(scope="module")
def episode(params):  # type: ignore[no-untyped-def]
    """Whole slates with random stakes (one far beyond depth)."""
    ticks = market.episode_ticks(params)
    key_stakes, key_mask = jax.random.split(jax.random.PRNGKey(10))
    stakes = jax.random.exponential(key_stakes, (SLATES, ticks, M, 5)) * 30.0
    stakes = stakes * (jax.random.uniform(key_mask, (SLATES, ticks, M, 5)) < 0.1)
    stakes = stakes.at[0, 3, 0, 0].set(1e6)  # a partial fill
    return jax.jit(market.rollout)(jax.random.PRNGKey(11), params, stakes)


def test_reset_shapes_and_snapshot(params, reset):
    state = reset(jax.random.PRNGKey(0), params)
    assert state.odds.shape == (M, 5) and state.match.score.shape == (M, 2)
    assert np.all(np.asarray(state.odds) > 1.0)
    np.testing.assert_allclose(state.implied[:, :3].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(state.snapshot_odds, state.odds)
    assert len(set(np.asarray(state.home)) | set(np.asarray(state.away))) == 2 * M


def test_money_is_conserved_and_fills_never_exceed_depth(episode):
    state, info = episode
    np.testing.assert_allclose(state.book_stakes, state.our_staked + state.crowd_staked, rtol=1e-5)
    total = np.asarray(info.fills + info.crowd_fills)
    # Depth in force at a tick is the one quoted after the previous tick.
    depth_before = np.concatenate(
        [np.asarray(info.depth[:, :1]) * np.nan, np.asarray(info.depth[:, :-1])], axis=1
    )
    checked = np.isfinite(depth_before)
    assert np.all(total[checked] <= depth_before[checked] + 1e-3)
    assert np.all(np.asarray(info.fills) <= np.asarray(info.requested) + 1e-3)
    # The huge stake was cut to the depth, not filled.
    assert 0.0 < float(info.fills[0, 3, 0, 0]) < 1e5


def test_cash_never_negative_and_settlement_adds_up(episode, params):
    state, info = episode
    assert np.all(np.asarray(info.cash) >= 0.0)
    assert bool(np.all(np.asarray(info.done[:, -1])))
    assert np.all(np.asarray(state.our_stakes) == 0.0)
    pnl = np.asarray(info.settled_pnl).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(np.asarray(state.cash) - float(params.bankroll), pnl, atol=0.05)
    np.testing.assert_allclose(np.asarray(info.equity[:, -1]), np.asarray(state.cash), atol=1e-3)


def test_closing_prices_are_kept_and_differ_from_the_snapshot(episode, params):
    state, info = episode
    closing_step = params.pre_match_ticks - 1
    np.testing.assert_allclose(state.closing_odds, info.odds[:, closing_step])
    assert np.any(np.abs(np.asarray(state.closing_odds - state.snapshot_odds)) > 1e-3)
    assert np.all(np.asarray(info.pre_match[:, : params.pre_match_ticks]))


def test_book_suspends_after_a_goal(episode):
    _, info = episode
    goals = np.asarray(info.events.goals.sum(-1)) > 0
    depth = np.asarray(info.depth[..., 0])
    assert goals.any()
    assert np.all(depth[goals] == 0.0)


def _impact(params: market.MarketParams, stake: float, reset, step) -> float:  # type: ignore[no-untyped-def]
    """Rise of the home side's p_mkt (its price shortens) caused by one stake, same randomness."""
    state = reset(jax.random.PRNGKey(5), params)
    stakes = jnp.zeros((M, 5)).at[0, 0].set(stake)
    _, with_stake = step(jax.random.PRNGKey(6), state, stakes, params)
    _, without = step(jax.random.PRNGKey(6), state, jnp.zeros((M, 5)), params)
    return float(with_stake.market_probability[0, 0] - without.market_probability[0, 0])


def test_price_impact_grows_with_stake_and_shrinks_with_liquidity(params, reset, step):
    impacts = [_impact(params, stake, reset, step) for stake in (0.0, 20.0, 60.0, 120.0)]
    assert impacts[0] == pytest.approx(0.0, abs=1e-7)
    assert np.all(np.diff(impacts) > 0)
    deep = dataclasses.replace(
        params,
        bookmaker=dataclasses.replace(
            params.bookmaker, liquidity_close=params.bookmaker.liquidity_close * 4
        ),
    )
    assert _impact(deep, 60.0, reset, step) < impacts[2]


def test_stakes_beyond_cash_are_scaled_down(params, reset, step):
    state = reset(jax.random.PRNGKey(1), params)
    stakes = jnp.full((M, 5), 100.0)
    _, info = step(jax.random.PRNGKey(2), state, stakes, params)
    assert float(info.requested.sum()) == pytest.approx(float(params.bankroll), rel=1e-5)
    assert float(info.cash) >= 0.0


def test_validate_stakes_rejects_bad_input(params):
    good = np.zeros((M, 5))
    market.validate_stakes(good, params)
    for bad_value, index in ((-1.0, (2, 3)), (np.nan, (0, 1)), (np.inf, (9, 4))):
        bad = good.copy()
        bad[index] = bad_value
        with pytest.raises(ValueError, match=r"stakes.*index \(" + f"{index[0]}, {index[1]}"):
            market.validate_stakes(bad, params)
    with pytest.raises(ValueError, match="shape"):
        market.validate_stakes(np.zeros((M, 3)), params)


def test_cash_out_value_and_outcomes():
    assert float(market.cash_out_value(jnp.float32(30.0), jnp.float32(2.0))) == 15.0
    won = market.outcome_indicators(jnp.array([[2, 1], [1, 1], [0, 3]]))
    np.testing.assert_array_equal(won, [[1, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 0]])


def test_regime_params_are_interchangeable_under_jit(reset, step):
    """One compiled step serves every regime with the same static fields."""
    for name in ("manipulation", "liquidity_crunch"):
        other = market_params("E0", regime_params(name), n_matches=M)
        state = reset(jax.random.PRNGKey(0), other)
        new_state, _ = step(jax.random.PRNGKey(1), state, jnp.zeros((M, 5)), other)
        assert int(new_state.tick) == 1


@pytest.mark.slow
def test_market_calibration_on_real_odds(shared_data):
    """E0 2023-25, calm regime with its stored (E0-fitted) profile: the issue's bars."""
    from market_sim import data
    from market_sim.league_model import load_league_model
    from market_sim.market_calibration import market_rows

    frame = data.load_league(shared_data / "football-data", "E0", ["2324", "2425"])
    rows, _ = market_rows(
        frame,
        load_league_model("E0"),
        regime_params("calm"),
        jax.random.PRNGKey(0),
        replications=4,
        fit=False,
        bootstrap=300,
    )
    for name in (
        "overround_sharp",
        "overround_soft",
        "shin_z_median_sharp",
        "shin_z_median_soft",
        "rps_closing",
        "price_drift",
    ):
        assert rows[name]["pass"], (name, rows[name])
    flb = [rows[f"flb_roi_bucket_{k}"]["pass"] for k in range(6)]
    assert sum(flb) >= 5, rows


def test_no_money_taken_at_the_price_floor() -> None:
    """A line quoted at MIN_ODDS (decided, e.g. over 2.5 after three goals) takes no bets:
    wherever depth > 0 the book's own price has its margin, p_mkt × odds ≤ 1."""
    from market_sim.bookmaker import MIN_ODDS
    from market_sim.market import episode_ticks, rollout

    params = market_params("E0", "efficient", n_matches=4)
    stakes = jnp.zeros((64, episode_ticks(params), 4, 5))
    _, info = jax.jit(lambda k, s: rollout(k, params, s))(jax.random.PRNGKey(0), stakes)
    odds, depth = np.asarray(info.odds), np.asarray(info.depth)
    floor = odds <= MIN_ODDS * (1 + 1e-6)
    assert floor.any()  # decided lines occur in 64 slates
    assert (depth[floor] == 0).all()
    open_lines = depth > 0
    assert (np.asarray(info.market_probability)[open_lines] * odds[open_lines] <= 1 + 1e-5).all()

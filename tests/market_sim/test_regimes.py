"""Regimes: names, configs, and each regime's documented effect, measured."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from market_sim import market, regimes
from market_sim.regimes import REGIME_NAMES, market_params, regime_from_config, regime_params

M = 10
SLATES = 16
CONF = Path(__file__).resolve().parents[2] / "conf" / "regime"


def test_unknown_regime_lists_valid_names():
    with pytest.raises(ValueError, match="valid regimes: calm, biased_crowd"):
        regime_params("panic")


def test_config_with_unknown_key_is_rejected():
    with pytest.raises(ValueError, match=r"unknown keys \['margn'\]"):
        regime_from_config({"name": "calm", "margn": 0.1})
    with pytest.raises(ValueError, match="margin_method"):
        regime_from_config({"margin_method": "guess"})


@pytest.mark.parametrize("name", REGIME_NAMES)
def test_yaml_mirrors_the_regime(name):
    config = yaml.safe_load((CONF / f"{name}.yaml").read_text())
    assert regime_from_config(config) == regime_params(name)
    assert regimes._FACTORIES[name].__doc__


# ------------------------------------------------------------------ measured effects


@pytest.fixture(scope="module")
def run_episodes():  # type: ignore[no-untyped-def]
    """SLATES whole slates with no stakes; per-tick info [S, T, ...] (shared compile)."""
    rollout = jax.jit(market.rollout)

    def run(params: market.MarketParams, key: jax.Array) -> market.MarketStepInfo:
        stakes = jnp.zeros((SLATES, market.episode_ticks(params), M, 5))
        return rollout(key, params, stakes)[1]

    return run


@pytest.fixture(scope="module")
def episodes(run_episodes):  # type: ignore[no-untyped-def]
    cache: dict[str, tuple[market.MarketParams, market.MarketStepInfo]] = {}

    def get(name: str) -> tuple[market.MarketParams, market.MarketStepInfo]:
        if name not in cache:
            params = market_params("E0", name, n_matches=M)
            cache[name] = (params, run_episodes(params, jax.random.PRNGKey(2)))
        return cache[name]

    return get


def _closing(params: market.MarketParams, info: market.MarketStepInfo) -> tuple:
    """(closing 1X2 odds, oracle at the close), flattened over slates and matches."""
    tick = params.pre_match_ticks - 1
    odds = np.asarray(info.odds[:, tick, :, :3]).reshape(-1, 3)
    truth = np.asarray(info.true_probability[:, tick, :, :3]).reshape(-1, 3)
    return odds, truth


def _expected_roi(odds: np.ndarray, truth: np.ndarray, bet: np.ndarray) -> float:
    """Expected flat-stake ROI under the oracle of the bets in mask ``bet``."""
    return float((truth * odds - 1.0)[bet].mean())


def _kelly_log_growth(odds: np.ndarray, truth: np.ndarray, fraction: float = 0.5) -> float:
    """Mean expected log-growth per match of fractional Kelly on the best oracle edge."""
    edge = truth * odds - 1.0
    best = edge.argmax(1)
    rows = np.arange(odds.shape[0])
    p, o, e = truth[rows, best], odds[rows, best], edge[rows, best]
    f = np.where(e > 0, fraction * e / (o - 1.0), 0.0)
    return float((p * np.log1p(f * (o - 1.0)) + (1 - p) * np.log1p(-f)).mean())


def test_efficient_market_leaves_no_edge(episodes):
    params, info = episodes("efficient")
    odds, truth = _closing(params, info)
    naive = _expected_roi(odds, truth, np.ones_like(odds, bool))
    oracle = _expected_roi(odds, truth, truth * odds > 1.0)
    margin = regime_params("efficient").overround_1x2
    # The naive bettor loses about the margin; the oracle's positive edges are ~0.
    assert naive == pytest.approx(-margin / (1 + margin), abs=0.008)
    assert -0.005 < oracle < 0.02
    calm_params, calm_info = episodes("calm")
    calm_odds, calm_truth = _closing(calm_params, calm_info)
    assert oracle < _expected_roi(calm_odds, calm_truth, calm_truth * calm_odds > 1.0)


def test_biased_crowd_gives_the_oracle_kelly_bettor_positive_growth(episodes):
    params, info = episodes("biased_crowd")
    growth = _kelly_log_growth(*_closing(params, info))
    calm_params, calm_info = episodes("calm")
    calm_growth = _kelly_log_growth(*_closing(calm_params, calm_info))
    assert growth > 0.003
    assert growth > 2 * calm_growth


def test_manipulation_moves_prices_without_events(episodes):
    def unexplained_moves(name: str) -> float:
        params, info = episodes(name)
        inplay = slice(params.pre_match_ticks, None)
        move = np.abs(np.asarray(info.price_move[:, inplay])).max(-1)
        events = np.asarray((info.events.goals.sum(-1) + info.events.red_cards.sum(-1))[:, inplay])
        live = ~np.asarray(info.suspended[:, inplay]) & (np.asarray(info.minute[:, inplay]) < 88)
        quiet = (events == 0) & live
        return float((move[quiet] > 0.03).mean())

    assert unexplained_moves("manipulation") > 5 * unexplained_moves("calm") + 0.01
    params, info = episodes("manipulation")
    depth = np.asarray(info.depth[..., 0])
    liquidity = np.asarray(info.liquidity)
    withdrawn = (depth > 0) & (depth < 0.5 * params.bookmaker.depth_fraction * liquidity)
    assert withdrawn.mean() > 0.02


def test_variance_explosion_has_heavier_tailed_scoring(episodes):
    def goals_and_reds(name: str) -> tuple[np.ndarray, np.ndarray]:
        _, info = episodes(name)
        goals = np.asarray(info.events.goals).sum(axis=(1, 3)).ravel()
        reds = np.asarray(info.events.red_cards).sum(axis=(1, 3)).ravel()
        return goals, reds

    goals, reds = goals_and_reds("variance_explosion")
    calm_goals, calm_reds = goals_and_reds("calm")
    assert goals.var() / goals.mean() > calm_goals.var() / calm_goals.mean() + 0.15
    assert reds.mean() > 2.0 * calm_reds.mean()


def test_structural_break_changes_scoring_at_the_break():
    params = market_params("E0", "structural_break", n_matches=M)
    spec = regime_params("structural_break")
    reset = jax.jit(market.reset)
    key = jax.random.PRNGKey(4)

    def at(round_index: int) -> market.MarketState:
        return reset(key, params, round_index)

    before, last_before, after, learned = (
        at(0),
        at(spec.break_round - 1),
        at(spec.break_round),
        at(spec.break_round + spec.break_lag_rounds),
    )
    np.testing.assert_allclose(before.match_params.goals, last_before.match_params.goals)
    change = np.abs(np.log(after.match_params.goals / last_before.match_params.goals))
    assert change.mean() > 0.15
    # The bookmaker notices only after the lag.
    np.testing.assert_allclose(after.belief_goals, last_before.belief_goals)
    assert np.abs(np.log(learned.belief_goals / after.belief_goals)).mean() > 0.15
    calm = market_params("E0", "calm", n_matches=M)
    np.testing.assert_allclose(
        reset(key, calm, spec.break_round).match_params.goals,
        reset(key, calm, 0).match_params.goals,
    )


@pytest.fixture(scope="module")
def impact():  # type: ignore[no-untyped-def]
    step = jax.jit(market.step)
    reset = jax.jit(market.reset)

    def measure(name: str, stake: float = 150.0, ticks: int = 4) -> tuple[np.ndarray, float]:
        """Extra p_mkt of the home side over ``ticks`` after one stake (vs none), and the
        filled share of the stake."""
        params = market_params("E0", name, n_matches=M)
        with_stake = without = reset(jax.random.PRNGKey(8), params)
        path, filled = [], 0.0
        for t in range(ticks):
            stakes = jnp.zeros((M, 5)).at[0, 0].set(stake if t == 0 else 0.0)
            with_stake, info = step(jax.random.PRNGKey(100 + t), with_stake, stakes, params)
            without, base = step(jax.random.PRNGKey(100 + t), without, jnp.zeros((M, 5)), params)
            filled += float(info.fills[0, 0])
            path.append(float(info.market_probability[0, 0] - base.market_probability[0, 0]))
        return np.asarray(path), filled / stake

    return measure


def test_herding_frenzy_amplifies_our_impact(impact):
    calm, _ = impact("calm")
    frenzy, _ = impact("herding_frenzy")
    assert calm[0] > 0 and frenzy[0] > 0
    # Herding money keeps pushing after our stake: the move grows instead of fading.
    assert frenzy[-1] / frenzy[0] > 1.0
    assert frenzy[-1] / frenzy[0] > calm[-1] / calm[0] + 0.3


def test_liquidity_crunch_means_partial_fills_and_bigger_impact(impact):
    calm, calm_filled = impact("calm", stake=150.0, ticks=1)
    crunch, crunch_filled = impact("liquidity_crunch", stake=150.0, ticks=1)
    assert calm_filled == pytest.approx(1.0)
    assert crunch_filled < 0.5
    assert crunch[0] > 3 * calm[0]


def test_regimes_compose_with_any_league():
    for league in ("SP1", "E1"):
        params = market_params(league, "variance_explosion", n_matches=M)
        assert params.league.for_strength.shape[1] >= 2 * M

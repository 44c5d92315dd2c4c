"""Baselines, common-random-number evaluation and metrics (agents/)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.baselines import BASELINE_NAMES, BaselineConfig, make_baseline
from agents.evaluation import Trajectories, rollout
from agents.metrics import METRIC_NAMES, bootstrap_mean, paired_difference, per_seed, summarise
from envs import functional, make_params

SMALL = {"n_matches": 2, "regime": "biased_crowd"}


@pytest.fixture(scope="module")
def params() -> functional.EnvParams:
    return make_params(**SMALL)


@pytest.fixture(scope="module")
def runs(params: functional.EnvParams) -> dict[str, Trajectories]:
    return {
        name: rollout(make_baseline(name), params, [11, 12, 13], 2)
        for name in ("no_bet", "random", "flat_value", "oracle_kelly")
    }


def test_unknown_baseline_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown baseline 'kelly'.*kelly_value"):
        make_baseline("kelly")


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_baseline_actions_are_valid(name: str, params: functional.EnvParams) -> None:
    obs, state = functional.reset(jax.random.PRNGKey(0), params)
    action = jax.jit(make_baseline(name).function, static_argnums=())(
        jax.random.PRNGKey(1), obs, state, params
    )
    assert action.shape == (params.market.n_matches * 5,)
    assert bool(jnp.all(jnp.isfinite(action))) and bool(jnp.all(jnp.abs(action) <= 1.0))


@pytest.mark.parametrize("min_return", [0.0, 0.05])
def test_selective_kelly_is_kelly_on_the_large_returns(
    min_return: float, params: functional.EnvParams
) -> None:
    """selective_kelly = kelly_value where p_model × odds − 1 ≥ min_return, no bet elsewhere."""
    obs, state = functional.reset(jax.random.PRNGKey(3), params)
    config = BaselineConfig(min_return=min_return)
    kelly = np.asarray(make_baseline("kelly_value", config).function(None, obs, state, params))
    selective = np.asarray(
        make_baseline("selective_kelly", config).function(None, obs, state, params)
    )
    value = np.asarray(state.model_probability * state.market.odds - 1.0).reshape(-1)
    large = value >= min_return
    np.testing.assert_allclose(selective[large], kelly[large], atol=1e-6)
    assert np.all(selective[~large] == -1.0)
    assert np.any(kelly > 0), "no Kelly bet at all: the test would prove nothing"


def test_no_bet_never_stakes(runs: dict[str, Trajectories]) -> None:
    t = runs["no_bet"]
    assert t.fills.sum() == 0.0
    np.testing.assert_allclose(t.equity, t.bankroll)


def test_common_random_numbers(runs: dict[str, Trajectories]) -> None:
    """Every policy meets the same matches: the final scores do not depend on the bets."""
    for name in ("random", "flat_value", "oracle_kelly"):
        np.testing.assert_array_equal(runs[name].won, runs["no_bet"].won)
    assert runs["random"].fills.sum() > 0


def test_rollout_is_deterministic(params: functional.EnvParams) -> None:
    a = rollout(make_baseline("random"), params, [5], 2)
    b = rollout(make_baseline("random"), params, [5], 2)
    for field in dataclasses.fields(Trajectories):
        np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name))


def test_caps_hold_in_evaluation(runs: dict[str, Trajectories]) -> None:
    for t in runs.values():
        assert np.all(t.equity > 0)
        assert np.all(t.exposure <= t.hard_cap + 1e-5)


def test_oracle_beats_random_in_biased_crowd(runs: dict[str, Trajectories]) -> None:
    growth = {name: per_seed(t)["log_growth"].mean() for name, t in runs.items()}
    assert growth["oracle_kelly"] > growth["random"]
    assert growth["no_bet"] == 0.0


def test_per_seed_metrics_by_hand() -> None:
    """Two seeds × two rounds of a hand-made equity path."""
    equity = np.array(
        [
            [100.0, 90.0, 110.0],  # seed 0 round 0: +10%
            [100.0, 100.0, 80.0],  # seed 0 round 1: −20%
            [100.0, 100.0, 100.0],  # seed 1: no bets
            [100.0, 100.0, 100.0],
        ]
    )
    shape = (4, 2, 1, 5)
    fills = np.zeros(shape)
    fills[0, 0, 0, 0] = 10.0
    fills[1, 0, 0, 1] = 20.0
    t = Trajectories(
        seeds=[0, 1],
        rounds=2,
        bankroll=100.0,
        equity=equity,
        fills=fills,
        executed_odds=np.full(shape, 2.0),
        cas=np.zeros(shape),
        bet_types=(fills > 0).astype(int),
        minute=np.zeros((4, 2, 1)),
        pre_match=np.array([[True, False]] * 4),
        exposure=np.zeros((4, 2)),
        hard_cap=np.full((4, 2), 0.3),
        closing_odds=np.full((4, 1, 5), 1.6),
        won=np.array([[[1, 0, 0, 1, 0]], [[1, 0, 0, 1, 0]], [[0] * 5], [[0] * 5]], float),
        alive=np.ones((4, 2), bool),
    )
    metrics = per_seed(t)
    assert set(metrics) == set(METRIC_NAMES)
    np.testing.assert_allclose(metrics["log_growth"], [(np.log(1.1) + np.log(0.8)) / 2, 0.0])
    np.testing.assert_allclose(metrics["roi"][0], (10.0 - 20.0) / 30.0)
    assert np.isnan(metrics["roi"][1])  # no stake: undefined, left out of the mean
    np.testing.assert_allclose(metrics["hit_rate"][0], 0.5)  # one of two bets won
    # Chain 1 → 0.9 → 1.1 → 1.1 → 0.88: the largest fall is 1.1 → 0.88.
    np.testing.assert_allclose(metrics["max_drawdown"][0], 0.2)
    np.testing.assert_allclose(metrics["clv"][0], 2.0 / 1.6 - 1.0)
    np.testing.assert_allclose(metrics["value_share"][0], 1.0)
    summary = summarise(metrics, samples=200)
    assert summary["roi"]["n"] == 1


def test_bootstrap_interval_and_pairing() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0.3, 1.0, 400)
    result = bootstrap_mean(values)
    low, high = result["ci95"]
    assert low < result["mean"] < high and low < 0.3 < high
    assert high - low < 0.3
    paired = paired_difference(values, values)
    assert paired["mean"] == 0.0 and paired["ci95"] == [0.0, 0.0]
    assert bootstrap_mean(np.array([np.nan]))["mean"] is None

"""Crowd: longshot bias, herding, informed money."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from market_sim import crowd
from market_sim.crowd import CrowdParams

PROBABILITIES = jnp.array([0.6, 0.25, 0.15, 0.55, 0.45])


def test_recreational_money_overbets_longshots():
    params = CrowdParams(longshot_bias=0.4, recreational_noise=0.0)
    flow = np.asarray(crowd.recreational_flow(jnp.zeros(5), PROBABILITIES, 1000.0, params))
    share = flow[:3] / flow[:3].sum()
    assert share[2] > 0.15 and share[0] < 0.6
    unbiased = dataclasses.replace(params, longshot_bias=0.0)
    flow = np.asarray(crowd.recreational_flow(jnp.zeros(5), PROBABILITIES, 1000.0, unbiased))
    np.testing.assert_allclose(flow[:3] / flow[:3].sum(), PROBABILITIES[:3], atol=1e-5)
    assert np.isclose(flow.sum(), params.recreational_share * 1000.0, rtol=1e-5)


def test_herding_follows_rising_prices_only():
    trend = jnp.array([0.01, -0.01, 0.0, 0.002, -0.002])
    flow = np.asarray(crowd.herding_flow(trend, 1000.0, CrowdParams()))
    assert flow[0] > flow[3] > 0.0
    assert flow[1] == flow[2] == flow[4] == 0.0


def test_informed_money_needs_an_edge():
    odds = 1.0 / (PROBABILITIES * 1.05)
    truth = jnp.array([0.66, 0.22, 0.12, 0.5, 0.5])
    flow = np.asarray(crowd.informed_flow(truth, odds, 1000.0, CrowdParams()))
    edge = np.asarray(truth * odds - 1.0)
    assert np.all((flow > 0) == (edge > 0))


@settings(max_examples=25, deadline=None)
@given(liquidity=st.floats(0.0, 1e5), seed=st.integers(0, 1000))
def test_flows_are_non_negative_and_scale_with_liquidity(liquidity, seed):
    key = jax.random.normal(jax.random.PRNGKey(seed), (5,))
    trend = jnp.array([0.003, -0.001, 0.0, 0.001, 0.0])
    truth = jnp.array([0.62, 0.23, 0.15, 0.5, 0.5])
    odds = 1.0 / (PROBABILITIES * 1.05)
    flows = crowd.crowd_flows(key, PROBABILITIES, odds, truth, trend, liquidity, CrowdParams())
    doubled = crowd.crowd_flows(
        key, PROBABILITIES, odds, truth, trend, 2 * liquidity, CrowdParams()
    )
    for one, two in zip(flows, doubled, strict=True):
        assert np.all(np.asarray(one) >= 0.0)
        np.testing.assert_allclose(np.asarray(two), 2 * np.asarray(one), rtol=1e-4, atol=1e-3)

"""JAX PPO pieces that the end-to-end tests do not pin down: the expected-utility credit
and the configuration errors."""

from __future__ import annotations

import math
from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.jax_ppo import PPOConfig, cap_charge, expected_fill_utility

PROBABILITY = [0.5, 0.3, 0.2, 0.6, 0.4]
ODDS = [2.1, 3.0, 5.0, 1.6, 2.4]


def _market(stakes: list[float], payout: list[float]) -> SimpleNamespace:
    """One environment, one match: the fields ``expected_fill_utility`` reads."""
    return SimpleNamespace(
        true_probability=jnp.asarray([[PROBABILITY]], jnp.float32),
        odds=jnp.asarray([[ODDS]], jnp.float32),
        our_stakes=jnp.asarray([[stakes]], jnp.float32),
        our_payout=jnp.asarray([[payout]], jnp.float32),
    )


def test_expected_fill_utility_by_hand() -> None:
    # 10 on home at 2.1 with 1,000 equity, nothing open: the 1X2 market's log-utility.
    market = _market([0.0] * 5, [0.0] * 5)
    fills = jnp.asarray([[[10.0, 0.0, 0.0, 0.0, 0.0]]])
    value = float(expected_fill_utility(market, fills, jnp.asarray([1000.0]))[0, 0])
    expected = 0.5 * math.log(1 + 11 / 1000) + 0.5 * math.log(1 - 10 / 1000)
    assert value == pytest.approx(expected, rel=1e-4)

    # A second fill on over 2.5 with home already open: only the O/U market changes.
    market = _market([10.0, 0.0, 0.0, 0.0, 0.0], [21.0, 0.0, 0.0, 0.0, 0.0])
    fills = jnp.asarray([[[0.0, 0.0, 0.0, 20.0, 0.0]]])
    value = float(expected_fill_utility(market, fills, jnp.asarray([1000.0]))[0, 0])
    expected = 0.6 * math.log(1 + 12 / 1000) + 0.4 * math.log(1 - 20 / 1000)
    assert value == pytest.approx(expected, rel=1e-4)


@settings(max_examples=40, deadline=None)
@given(
    selection=st.integers(0, 4),
    stake=st.floats(0.0, 50.0),
    equity=st.floats(100.0, 5000.0),
)
def test_expected_fill_utility_sign_follows_the_edge(
    selection: int, stake: float, equity: float
) -> None:
    """A fill's utility is ≤ its expected value p·o − 1 (log is concave), the two agree to
    first order, and no fill is worth exactly nothing."""
    fills = np.zeros((1, 1, 5), np.float32)
    fills[0, 0, selection] = stake
    market = _market([0.0] * 5, [0.0] * 5)
    value = float(expected_fill_utility(market, jnp.asarray(fills), jnp.asarray([equity]))[0, 0])
    edge = PROBABILITY[selection] * ODDS[selection] - 1.0
    linear = stake / equity * edge
    assert value <= linear + 1e-6
    assert abs(value - linear) <= (stake / equity) ** 2 * ODDS[selection] ** 2 + 1e-6
    if stake == 0.0:
        assert value == 0.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"credit": "oracle"}, r"agent.credit: expected 'realised' or 'expected', got 'oracle'"),
        ({"credit": "expected", "factored": False}, r"'expected' needs agent.factored"),
        ({"num_minibatches": 5}, r"agent.num_minibatches: must divide"),
        ({"noise": "tick"}, r"agent.noise: expected 'episode' or 'step'"),
        ({"cap_price": -0.1}, r"agent.cap_price: expected in \[0, 10\), got -0.1"),
    ],
)
def test_config_errors_name_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PPOConfig(**changes).validate()  # type: ignore[arg-type]


def test_cap_charge_by_hand() -> None:
    """Each match pays cap_price × its stakes / equity; unfactored, the slate's sum."""
    fills = np.zeros((2, 3, 5), np.float32)
    fills[0, 0, [0, 3]] = [20.0, 30.0]  # 50 staked on match 0 of slate 0
    fills[0, 2, 1] = 10.0
    fills[1, 1, 4] = 40.0
    equity = jnp.asarray([1000.0, 500.0])
    charge = np.asarray(cap_charge(jnp.asarray(fills), equity, 0.5, factored=True))
    np.testing.assert_allclose(charge, [[0.025, 0.0, 0.005], [0.0, 0.04, 0.0]], rtol=1e-6)
    total = np.asarray(cap_charge(jnp.asarray(fills), equity, 0.5, factored=False))
    np.testing.assert_allclose(total, [[0.03], [0.04]], rtol=1e-6)

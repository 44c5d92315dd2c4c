"""Margin removal and application (market_sim.margin): reference values, penaltyblog
agreement, round trips, batching and the boundary validators."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from market_sim.margin import (
    METHODS,
    apply_margin,
    implied_probabilities,
    overround,
    shin_z,
    validate_odds,
    validate_probabilities,
)

ODDS = [2.6, 2.4, 4.3]
REFERENCE = {
    "shin": [0.372994, 0.404779, 0.222227],
    "multiplicative": [0.372026, 0.403028, 0.224946],
    "additive": [0.373335, 0.405387, 0.221278],
    "power": [0.372984, 0.405107, 0.221908],
    "odds_ratio": [0.372429, 0.404131, 0.223440],
}
PROPERTY = settings(max_examples=40, deadline=None)


@pytest.mark.parametrize("method", METHODS)
def test_reference_values(method: str) -> None:
    got = implied_probabilities(jnp.array(ODDS), method)
    np.testing.assert_allclose(got, REFERENCE[method], atol=2e-6)
    assert float(jnp.sum(got)) == pytest.approx(1.0, abs=1e-6)


def test_shin_z_reference() -> None:
    assert float(shin_z(jnp.array(ODDS))) == pytest.approx(0.0169425, abs=1e-6)
    two_way = jnp.array([1.5, 2.74])
    assert float(shin_z(two_way)) == pytest.approx(0.0317273, abs=1e-6)
    np.testing.assert_allclose(
        implied_probabilities(two_way, "shin"), [0.650852, 0.349148], atol=2e-6
    )


def test_overround() -> None:
    expected = 1 / 2.6 + 1 / 2.4 + 1 / 4.3 - 1
    assert float(overround(jnp.array(ODDS))) == pytest.approx(expected, abs=1e-6)
    assert float(overround(jnp.array([2.0, 2.0]))) == pytest.approx(0.0, abs=1e-7)


def test_no_overround_shin_is_multiplicative() -> None:
    fair = jnp.array([2.0, 4.0, 4.0])  # Σ 1/odds = 1
    assert float(shin_z(fair)) == pytest.approx(0.0, abs=1e-6)
    exchange = jnp.array([2.1, 4.2, 4.2])  # Σ 1/odds < 1
    np.testing.assert_allclose(
        implied_probabilities(exchange, "shin"),
        implied_probabilities(exchange, "multiplicative"),
        atol=1e-6,
    )


@st.composite
def markets(draw: st.DrawFn) -> tuple[np.ndarray, float]:
    """Decimal odds of a random 2..5-outcome market with a 0.5 %..15 % margin."""
    count = draw(st.integers(2, 5))
    weights = draw(st.lists(st.floats(0.2, 5.0), min_size=count, max_size=count))
    fair = np.asarray(weights) / np.sum(weights)
    margin = draw(st.floats(0.005, 0.15))
    odds = 1.0 / (fair * (1.0 + margin))
    assume(odds.min() > 1.02)  # decimal odds must exceed 1
    return odds, margin


@PROPERTY
@given(markets())
def test_agrees_with_penaltyblog(market: tuple[np.ndarray, float]) -> None:
    penaltyblog = pytest.importorskip("penaltyblog")
    odds, _ = market
    for method in METHODS:
        expected = penaltyblog.implied.calculate_implied(list(map(float, odds)), method=method)
        got = implied_probabilities(jnp.asarray(odds), method)
        np.testing.assert_allclose(got, expected.probabilities, atol=1e-5, err_msg=method)
        if method == "shin":
            z = expected.method_params["z"]
            assert float(shin_z(jnp.asarray(odds))) == pytest.approx(z, abs=1e-5)


@PROPERTY
@given(markets())
def test_apply_margin_inverts_each_method(market: tuple[np.ndarray, float]) -> None:
    odds, margin = market
    fair = np.asarray(implied_probabilities(jnp.asarray(odds), "multiplicative"))
    for method in METHODS:
        made = apply_margin(jnp.asarray(fair), margin, method)
        assert float(overround(made)) == pytest.approx(margin, abs=2e-5), method
        back = implied_probabilities(made, method)
        np.testing.assert_allclose(back, fair, atol=2e-5, err_msg=method)


@pytest.mark.parametrize("method", ["multiplicative", "power", "shin", "odds_ratio"])
def test_favourite_longshot_direction(method: str) -> None:
    # Every method but additive keeps probabilities in (0, 1) and ordered like 1/odds.
    got = np.asarray(implied_probabilities(jnp.array([1.2, 7.0, 15.0]), method))
    assert np.all(got > 0) and np.all(got < 1)
    assert got[0] > got[1] > got[2]


def test_unknown_method_raises() -> None:
    with pytest.raises(ValueError, match="method"):
        implied_probabilities(jnp.array(ODDS), "bogus")
    with pytest.raises(ValueError, match="method"):
        apply_margin(jnp.array([0.5, 0.5]), 0.05, "bogus")


@pytest.mark.parametrize("method", METHODS)
def test_batch_of_4096_under_jit_and_vmap(method: str) -> None:
    rng = np.random.default_rng(0)
    fair = rng.dirichlet([3.0, 2.0, 3.0], size=4096)
    margin = rng.uniform(0.01, 0.1, size=4096)
    make = jax.jit(jax.vmap(partial(apply_margin, method=method)))
    odds = make(jnp.asarray(fair), jnp.asarray(margin))
    implied = jax.jit(jax.vmap(partial(implied_probabilities, method=method)))(odds)
    np.testing.assert_allclose(implied, fair, atol=5e-5)
    np.testing.assert_allclose(jax.jit(jax.vmap(overround))(odds), margin, atol=5e-5)
    assert jax.jit(jax.vmap(shin_z))(odds).shape == (4096,)


def test_leading_axes_without_vmap() -> None:
    odds = jnp.array([ODDS, [1.5, 4.0, 7.0]])
    for method in METHODS:
        batched = implied_probabilities(odds, method)
        single = implied_probabilities(odds[1], method)
        np.testing.assert_allclose(batched[1], single, atol=1e-6)


def test_validate_odds_names_field_and_index() -> None:
    validate_odds([2.6, 2.4, 4.3])
    with pytest.raises(ValueError, match=r"odds: .*nan.* at index 1"):
        validate_odds([2.0, float("nan"), 3.0])
    with pytest.raises(ValueError, match=r"home_odds: .* at index \(1, 0\)"):
        validate_odds([[2.0, 3.0], [1.0, 3.0]], name="home_odds")
    with pytest.raises(ValueError, match=r"odds: .*inf"):
        validate_odds([2.0, float("inf")])


def test_validate_probabilities() -> None:
    validate_probabilities([0.5, 0.3, 0.2])
    with pytest.raises(ValueError, match=r"probabilities: .* at index 2"):
        validate_probabilities([0.5, 0.6, -0.1])
    with pytest.raises(ValueError, match=r"probs: expected each market .* at index 1"):
        validate_probabilities([[0.5, 0.5], [0.5, 0.4]], name="probs")
    validate_probabilities([0.5, 0.6], sum_to_one=False)

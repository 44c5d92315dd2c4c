"""Portfolio maths (market_sim.portfolio): N_eff, λ, Hard-Cap, joint Kelly against
published values and a closed form, clusters, the exact projection, batching and the
boundary validators."""

from __future__ import annotations

import itertools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market_sim.portfolio import (
    approximation_penalties,
    average_correlation,
    correlation_clusters,
    effective_bets,
    hard_cap,
    kelly_stakes,
    project_stakes,
    risk_multiplier,
    validate_cluster_ids,
    validate_correlation,
    validate_stakes,
    volatility_target,
)

PROPERTY = settings(max_examples=30, deadline=None)
SEEDS = st.integers(0, 2**32 - 1)
BATCH = 4096


def random_correlation(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random correlation matrix (PSD, unit diagonal) with signed correlations."""
    loadings = rng.normal(size=(n, rng.integers(1, n + 1))) * rng.uniform(0.1, 2.0)
    covariance = loadings @ loadings.T + np.diag(rng.uniform(0.0, 1.0, n)) + 1e-9 * np.eye(n)
    scale = 1.0 / np.sqrt(np.diag(covariance))
    corr = covariance * scale[:, None] * scale[None, :]
    np.fill_diagonal(corr, 1.0)
    return corr


def log_growth(probs: np.ndarray, odds: np.ndarray, stakes: np.ndarray) -> float:
    """Exact E[log wealth] of a [M, K] slate by enumeration (numpy, float64)."""
    matches, outcomes = probs.shape
    states = np.concatenate([probs, 1.0 - probs.sum(1, keepdims=True)], 1).clip(0.0)
    total = 0.0
    for joint in itertools.product(range(outcomes + 1), repeat=matches):
        chance = np.prod([states[m, j] for m, j in enumerate(joint)])
        if chance == 0.0:
            continue
        wealth = 1.0 - stakes.sum()
        wealth += sum(stakes[m, j] * odds[m, j] for m, j in enumerate(joint) if j < outcomes)
        total += chance * np.log(wealth)
    return float(total)


# ------------------------------------------------------------------ N_eff, λ, Hard-Cap


def test_effective_bets_reference() -> None:
    assert float(effective_bets(jnp.ones(4), jnp.eye(4))) == pytest.approx(4.0)
    assert float(effective_bets(jnp.ones(4), jnp.ones((4, 4)))) == pytest.approx(1.0)
    half = jnp.array([[1.0, 0.5], [0.5, 1.0]])
    # w = (0.5, 0.5): wᵀRw = 0.25 + 0.25 + 2 · 0.25 · 0.5 = 0.75
    assert float(effective_bets(jnp.array([10.0, 10.0]), half)) == pytest.approx(1 / 0.75)
    assert float(effective_bets(jnp.zeros(3), jnp.eye(3))) == 1.0
    assert float(effective_bets(jnp.array([0.0, 5.0, 0.0]), jnp.eye(3))) == 1.0


@PROPERTY
@given(SEEDS, st.sampled_from([2, 5, 12]))
def test_effective_bets_between_one_and_n(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    corr = random_correlation(rng, n)
    weights = rng.exponential(size=n) * (rng.uniform(size=n) < 0.8)
    got = float(effective_bets(jnp.asarray(weights), jnp.asarray(corr)))
    assert 1.0 - 1e-5 <= got <= n + 1e-4


def test_lambda_hard_cap_and_volatility_target() -> None:
    assert float(risk_multiplier(1.0, 1.5, 0.25)) == pytest.approx(1.5 * 1.5)
    assert float(risk_multiplier(1.0, 1.0, -0.2)) == pytest.approx(1.0)
    assert float(volatility_target(2.0, 0.1, 0.2)) == pytest.approx(1.0)
    assert np.isfinite(float(volatility_target(2.0, 0.1, 0.0)))
    assert float(hard_cap(0.3, 2.0, 4.0)) == pytest.approx(0.15)
    assert float(hard_cap(0.3, 6.0, 4.0)) == pytest.approx(0.3)
    corr = jnp.array([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]])
    assert float(average_correlation(corr)) == pytest.approx(0.4)
    assert float(average_correlation(corr, jnp.array([1.0, 0.0, 1.0]))) == pytest.approx(0.4)
    assert float(average_correlation(corr, jnp.array([1.0, 0.0, 0.0]))) == 0.0


def test_approximation_penalties() -> None:
    got = approximation_penalties(0.1)
    assert float(got.lam) == pytest.approx(0.96)
    assert float(got.hard_cap) == pytest.approx(0.98)
    assert float(got.corridor_liq) == pytest.approx(1.08)
    assert float(got.conf_w) == pytest.approx(0.95)
    assert not bool(got.use_exact)
    exact = approximation_penalties(0.13)
    assert bool(exact.use_exact)
    assert all(
        float(v) == 1.0 for v in (exact.lam, exact.hard_cap, exact.corridor_liq, exact.conf_w)
    )
    assert float(approximation_penalties(0.12).lam) == pytest.approx(1 - 0.4 * 0.12)


# ----------------------------------------------------------------------------- Kelly


def test_kelly_reference_values() -> None:
    one = kelly_stakes(jnp.array([0.5]), jnp.array([2.2]), fraction=1.0)
    assert float(one[0]) == pytest.approx(0.0833, abs=1e-3)
    assert float(one[0]) == pytest.approx(0.1 / 1.2, abs=1e-5)
    two = kelly_stakes(jnp.array([0.55, 0.55]), jnp.array([2.0, 2.0]), fraction=1.0)
    np.testing.assert_allclose(two, [0.0990, 0.0990], atol=1e-3)
    ten = kelly_stakes(jnp.full(10, 0.5), jnp.full(10, 2.2), fraction=1.0)
    np.testing.assert_allclose(ten, np.full(10, 0.0768), atol=1e-3)
    # Default fraction 0.75 of full Kelly.
    assert float(kelly_stakes(jnp.array([0.5]), jnp.array([2.2]))[0]) == pytest.approx(
        0.75 * 0.1 / 1.2, abs=1e-5
    )


def race_kelly(probs: np.ndarray, odds: np.ndarray) -> np.ndarray:
    """Closed-form Kelly for one event with mutually exclusive outcomes (Σ p = 1):
    Smoczynski & Tomkins (2010), f_k = p_k − R / o_k on the optimal set."""
    order = np.argsort(-probs * odds)
    chosen: list[int] = []
    reserve = 1.0
    for k in order:
        if probs[k] * odds[k] <= reserve:
            break
        chosen.append(int(k))
        reserve = (1.0 - probs[chosen].sum()) / (1.0 - (1.0 / odds[chosen]).sum())
    stakes = np.zeros_like(probs)
    stakes[chosen] = probs[chosen] - reserve / odds[chosen]
    return stakes


@PROPERTY
@given(SEEDS)
def test_kelly_one_match_matches_closed_form(seed: int) -> None:
    rng = np.random.default_rng(seed)
    market = rng.dirichlet([4.0, 3.0, 4.0])
    odds = 1.0 / (market * rng.uniform(1.0, 1.08))
    probs = market * np.exp(rng.normal(0.0, 0.2, 3))
    probs /= probs.sum()
    got = np.asarray(kelly_stakes(jnp.asarray(probs[None]), jnp.asarray(odds[None]), 1.0))[0]
    np.testing.assert_allclose(got, race_kelly(probs, odds), atol=1e-3)


def test_kelly_layouts_agree() -> None:
    probs, odds = jnp.array([0.3, 0.6, 0.45]), jnp.array([3.6, 1.8, 2.1])
    flat = kelly_stakes(probs, odds, 1.0)
    column = kelly_stakes(probs[:, None], odds[:, None], 1.0)
    np.testing.assert_allclose(flat, column[:, 0], atol=1e-6)
    # A binary bet is a two-outcome match with nothing staked on "lose".
    pair = kelly_stakes(
        jnp.stack([probs, 1 - probs], -1), jnp.stack([odds, 1.01 + 0 * odds], -1), 1.0
    )
    np.testing.assert_allclose(pair[:, 0], flat, atol=2e-4)
    np.testing.assert_allclose(pair[:, 1], 0.0, atol=1e-6)


@st.composite
def slates(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Four independent binary selections with odds around a 5 % margin."""
    rng = np.random.default_rng(draw(SEEDS))
    market = rng.uniform(0.1, 0.8, 4)
    probs = np.clip(market * np.exp(rng.normal(0.0, 0.2, 4)), 0.01, 0.95)
    return probs, 1.0 / (market * 1.05)


@PROPERTY
@given(slates())
def test_kelly_zero_without_edge(slate: tuple[np.ndarray, np.ndarray]) -> None:
    probs, odds = slate
    fair = np.minimum(probs, 0.999 / odds)  # p · odds < 1 everywhere
    got = kelly_stakes(jnp.asarray(fair), jnp.asarray(odds), 1.0)
    assert np.all(np.asarray(got) == 0.0)


@PROPERTY
@given(slates(), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.01, 1.0))
def test_kelly_scales_with_fraction_and_respects_max_total(
    slate: tuple[np.ndarray, np.ndarray], first: float, second: float, max_total: float
) -> None:
    probs, odds = (jnp.asarray(x) for x in slate)
    full = np.asarray(kelly_stakes(probs, odds, 1.0, max_total))
    a = np.asarray(kelly_stakes(probs, odds, first, max_total))
    b = np.asarray(kelly_stakes(probs, odds, second, max_total))
    np.testing.assert_allclose(a, first * full, atol=1e-6)
    np.testing.assert_allclose(b, second * full, atol=1e-6)
    assert np.all(full >= 0.0)
    assert full.sum() <= max_total * (1 + 1e-5)
    over = np.asarray(kelly_stakes(probs, odds, 1.5, max_total))
    assert over.sum() <= max_total * (1 + 1e-5)


@pytest.mark.parametrize("layout", ["binary", "1x2"])
def test_kelly_large_slate_approximation_near_exact(layout: str) -> None:
    rng = np.random.default_rng(7)
    if layout == "binary":
        market = rng.uniform(0.1, 0.8, 10)
        probs = np.clip(market * np.exp(rng.normal(0.0, 0.12, 10)), 0.01, 0.95)[:, None]
        odds = 1.0 / (market * 1.05)[:, None]
    else:
        market = rng.dirichlet([4.0, 3.0, 4.0], 5)
        odds = 1.0 / (market * 1.05)
        probs = market * np.exp(rng.normal(0.0, 0.15, (5, 3)))
        probs /= probs.sum(1, keepdims=True)
    exact = np.asarray(kelly_stakes(jnp.asarray(probs), jnp.asarray(odds), 1.0))
    approx = np.asarray(kelly_stakes(jnp.asarray(probs), jnp.asarray(odds), 1.0, max_outcomes=1))
    best = log_growth(probs, odds, exact)
    assert best > 0.0
    assert log_growth(probs, odds, approx) >= best * 0.99
    assert np.abs(approx - exact).sum() <= 0.1 * exact.sum()


def test_kelly_fifty_selections_feasible() -> None:
    rng = np.random.default_rng(8)
    market = rng.uniform(0.1, 0.8, 50)
    probs = np.clip(market * np.exp(rng.normal(0.0, 0.1, 50)), 0.01, 0.95)
    got = np.asarray(kelly_stakes(jnp.asarray(probs), jnp.asarray(1 / (market * 1.05)), 0.75, 0.5))
    assert np.all(np.isfinite(got)) and np.all(got >= 0.0)
    assert got.sum() <= 0.5 + 1e-5
    assert np.all(got[probs * (1 / (market * 1.05)) < 1.0] < 0.02)


# ------------------------------------------------------------------------- clusters


def test_correlation_clusters_examples() -> None:
    blocks = np.eye(5)
    blocks[0, 3] = blocks[3, 0] = 0.5
    blocks[1, 4] = blocks[4, 1] = 0.31
    blocks[2, 4] = blocks[4, 2] = 0.29
    assert correlation_clusters(jnp.asarray(blocks)).tolist() == [0, 1, 2, 0, 1]
    chain = np.eye(4)
    for i in range(3):
        chain[i, i + 1] = chain[i + 1, i] = 0.5  # 0–1–2–3 linked only through neighbours
    assert correlation_clusters(jnp.asarray(chain)).tolist() == [0, 0, 0, 0]
    hedge = np.array([[1.0, -0.8], [-0.8, 1.0]])
    assert correlation_clusters(jnp.asarray(hedge)).tolist() == [0, 1]
    assert correlation_clusters(jnp.asarray(hedge), absolute=True).tolist() == [0, 0]


@PROPERTY
@given(SEEDS, st.floats(0.05, 0.6))
def test_correlation_clusters_are_connected_components(seed: int, threshold: float) -> None:
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(seed)
    corr = random_correlation(rng, 12)
    _, components = connected_components(corr > threshold, directed=False)
    expected = np.array([np.flatnonzero(components == c).min() for c in components])
    assert correlation_clusters(jnp.asarray(corr), threshold).tolist() == expected.tolist()


# ----------------------------------------------------------------------- projection


def test_project_stakes_examples() -> None:
    ids = jnp.array([0, 0, 0])
    deep = jnp.full(3, 1e9)
    shared = project_stakes(jnp.array([5.0, 5.0, 5.0]), 100.0, 0.1, 1.0, ids, deep)
    np.testing.assert_allclose(shared, [10 / 3] * 3, rtol=1e-5)  # one cluster, one cap
    apart = project_stakes(jnp.array([5.0, 5.0, 5.0]), 100.0, 0.1, 1.0, jnp.arange(3), deep)
    np.testing.assert_allclose(apart, [5.0] * 3)
    total = project_stakes(jnp.array([5.0, 5.0, 5.0]), 100.0, 0.1, 0.06, jnp.arange(3), deep)
    np.testing.assert_allclose(total, [2.0] * 3, rtol=1e-5)
    shallow = project_stakes(
        jnp.array([-3.0, 20.0, 8.0]), 100.0, 0.1, 1.0, jnp.arange(3), deep.at[2].set(4.0)
    )
    np.testing.assert_allclose(shallow, [0.0, 10.0, 4.0])
    wider = project_stakes(jnp.array([6.0, 6.0, 1.0]), 100.0, 0.1, 1.0, ids, deep, cluster_cap=0.08)
    np.testing.assert_allclose(wider, [4.0, 4.0, 0.0], rtol=1e-5)  # θ = 2 ≥ the 1


@st.composite
def projection_cases(draw: st.DrawFn) -> dict[str, np.ndarray | float]:
    rng = np.random.default_rng(draw(SEEDS))
    n = 12
    return {
        "stakes": rng.normal(20.0, 40.0, n),
        "bankroll": float(rng.uniform(100.0, 2000.0)),
        "per_bet_cap": rng.uniform(0.0, 0.1, n),
        "hard_cap": float(rng.uniform(0.0, 0.4)),
        "cluster_ids": rng.integers(0, 4, n) * (rng.uniform(size=n) < 0.7),
        "depth": rng.uniform(0.0, 150.0, n),
        "cluster_cap": rng.uniform(0.0, 0.15, n),
    }


def feasible_points(case: dict, count: int, rng: np.random.Generator) -> np.ndarray:
    """Random points of the feasible set: inside the box, scaled into every sum cap."""
    bankroll = case["bankroll"]
    upper = np.minimum(case["per_bet_cap"] * bankroll, case["depth"])
    points = rng.uniform(size=(count, upper.size)) ** 3 * upper
    ids = case["cluster_ids"]
    for label in np.unique(ids):
        members = ids == label
        limit = case["cluster_cap"][label] * bankroll
        sums = points[:, members].sum(1, keepdims=True)
        points[:, members] *= np.minimum(1.0, limit / np.maximum(sums, 1e-12))
    limit = min(case["hard_cap"], 1.0) * bankroll
    sums = points.sum(1, keepdims=True)
    return points * np.minimum(1.0, limit / np.maximum(sums, 1e-12))


def assert_feasible(x: np.ndarray, case: dict, tol: float) -> None:
    bankroll = case["bankroll"]
    upper = np.minimum(case["per_bet_cap"] * bankroll, case["depth"])
    assert np.all(x >= 0.0)
    assert np.all(x <= upper + tol)
    for label in np.unique(case["cluster_ids"]):
        members = case["cluster_ids"] == label
        assert x[members].sum() <= case["cluster_cap"][label] * bankroll + tol
    assert x.sum() <= min(case["hard_cap"], 1.0) * bankroll + tol


@PROPERTY
@given(projection_cases(), SEEDS)
def test_project_stakes_feasible_idempotent_and_closest(case: dict, seed: int) -> None:
    project = partial(
        project_stakes,
        bankroll=case["bankroll"],
        per_bet_cap=jnp.asarray(case["per_bet_cap"]),
        hard_cap=case["hard_cap"],
        cluster_ids=jnp.asarray(case["cluster_ids"]),
        depth=jnp.asarray(case["depth"]),
        cluster_cap=jnp.asarray(case["cluster_cap"]),
    )
    proposal = case["stakes"]
    tol = 1e-4 * case["bankroll"]
    x = np.asarray(project(jnp.asarray(proposal)), dtype=float)
    assert_feasible(x, case, tol)
    again = np.asarray(project(jnp.asarray(x)), dtype=float)
    np.testing.assert_allclose(again, x, atol=tol)
    others = feasible_points(case, 200, np.random.default_rng(seed))
    distance = np.linalg.norm(proposal - x)
    assert np.all(np.linalg.norm(proposal - others, axis=1) >= distance - tol)
    # The variational inequality of a projection onto a convex set.
    assert np.all((others - x) @ (proposal - x) <= tol * (1 + np.abs(proposal).sum()))


def test_project_stakes_default_cluster_cap_is_the_per_bet_cap() -> None:
    got = project_stakes(
        jnp.array([30.0, 30.0, 30.0, 30.0]),
        100.0,
        jnp.array([0.1, 0.2, 0.1, 0.05]),
        1.0,
        jnp.array([0, 0, 2, 2]),
        jnp.full(4, 1e9),
    )
    # Cluster {0, 1}: one cap of max(10, 20) = 20; cluster {2, 3}: max(10, 5) = 10.
    assert float(got[:2].sum()) == pytest.approx(20.0, rel=1e-5)
    assert float(got[2:].sum()) == pytest.approx(10.0, rel=1e-5)
    assert float(got[3]) <= 5.0 + 1e-5


# --------------------------------------------------------------------------- batching


def test_every_function_on_a_batch_of_4096() -> None:
    rng = np.random.default_rng(9)
    n = 6
    corr = np.stack([random_correlation(rng, n) for _ in range(8)])[rng.integers(0, 8, BATCH)]
    corr = jnp.asarray(corr, jnp.float32)
    weights = jnp.asarray(rng.exponential(size=(BATCH, n)), jnp.float32)
    u = jnp.asarray(rng.uniform(size=(4, BATCH)), jnp.float32)
    n_eff = jax.jit(jax.vmap(effective_bets))(weights, corr)
    assert bool(jnp.all((n_eff >= 1.0 - 1e-5) & (n_eff <= n + 1e-4)))
    avg = jax.jit(jax.vmap(average_correlation))(corr, weights)
    lam = jax.jit(jax.vmap(risk_multiplier))(jnp.ones(BATCH), 1 + u[0], avg)
    assert jax.jit(jax.vmap(volatility_target))(lam, 0.1 + u[1], 0.05 + u[2]).shape == (BATCH,)
    caps = jax.jit(jax.vmap(hard_cap))(0.3 * jnp.ones(BATCH), n_eff, 4.0 * jnp.ones(BATCH))
    assert bool(jnp.all(caps <= 0.3 + 1e-6))
    penalties = jax.jit(jax.vmap(approximation_penalties))(0.2 * u[3])
    assert penalties.lam.shape == (BATCH,)
    labels = jax.jit(jax.vmap(correlation_clusters))(corr)
    assert labels.shape == (BATCH, n) and bool(jnp.all(labels <= jnp.arange(n)))
    stakes = jnp.asarray(rng.normal(10.0, 20.0, (BATCH, n)), jnp.float32)
    project = jax.vmap(project_stakes, in_axes=(0, None, None, 0, 0, 0))
    x = jax.jit(project)(stakes, 100.0, 0.05, 0.1 + 0.2 * u[0], labels, 100.0 * weights)
    assert bool(jnp.all(x >= 0.0)) and bool(jnp.all(x.sum(-1) <= 100.0 * (0.1 + 0.2 * u[0]) + 1e-3))
    market = rng.uniform(0.1, 0.8, (BATCH, 5))
    probs = jnp.asarray(np.clip(market * np.exp(rng.normal(0.0, 0.2, (BATCH, 5))), 0.01, 0.95))
    odds = jnp.asarray(1.0 / (market * 1.05))
    kelly = jax.jit(jax.vmap(kelly_stakes))(probs, odds, u[1], 0.2 + u[2])
    assert kelly.shape == (BATCH, 5) and bool(jnp.all(kelly >= 0.0))
    assert bool(jnp.all(kelly.sum(-1) <= 0.2 + u[2] + 1e-5))


# ------------------------------------------------------------------------- validation


def test_validate_correlation() -> None:
    validate_correlation(random_correlation(np.random.default_rng(0), 5))
    with pytest.raises(ValueError, match=r"corr: expected a symmetric .* index \(0, 1\)"):
        validate_correlation([[1.0, 0.5], [0.4, 1.0]])
    with pytest.raises(ValueError, match=r"corr: expected a positive semi-definite"):
        validate_correlation([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    with pytest.raises(ValueError, match=r"R: expected finite .* index \(1, 0\)"):
        validate_correlation([[1.0, 0.0], [float("nan"), 1.0]], name="R")
    with pytest.raises(ValueError, match=r"unit diagonal, got 0.5 at index \(1, 1\)"):
        validate_correlation([[1.0, 0.0], [0.0, 0.5]])
    with pytest.raises(ValueError, match=r"square"):
        validate_correlation([1.0, 0.0])


def test_validate_stakes_and_cluster_ids() -> None:
    validate_stakes([0.0, 1.0], bankroll=100.0)
    with pytest.raises(ValueError, match=r"stakes: .* at index 1"):
        validate_stakes([1.0, -0.5])
    with pytest.raises(ValueError, match=r"bankroll"):
        validate_stakes([1.0], bankroll=0.0)
    validate_cluster_ids([0, 0, 2])
    with pytest.raises(ValueError, match=r"cluster_ids: .* at index 2"):
        validate_cluster_ids([0, 1, 3])
    with pytest.raises(
        ValueError, match=r"cluster_ids: expected integer labels, got 0.5 at index 1"
    ):
        validate_cluster_ids([0, 0.5, 1])

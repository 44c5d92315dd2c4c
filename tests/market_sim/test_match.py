"""Match engine: determinism, invariants, and statistics against known parameters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market_sim import match
from market_sim.params import (
    MAX_TICKS,
    STOPPAGE_FIRST_MAX,
    STOPPAGE_SECOND_MAX,
    make_engine_params,
    make_match_params,
)
from market_sim.state import clock_minute

ENGINE = make_engine_params()


def batch_params(batch: int, goals: tuple[float, float] = (1.6, 1.2)):
    return make_match_params(
        goals=np.tile(goals, (batch, 1)),
        shots=np.tile([13.0, 11.0], (batch, 1)),
        shots_on_target=np.tile([4.6, 3.9], (batch, 1)),
        corners=np.tile([5.5, 4.5], (batch, 1)),
        fouls=np.tile([10.5, 11.0], (batch, 1)),
        yellow_cards=np.tile([1.6, 1.9], (batch, 1)),
        red_cards=np.tile([0.05, 0.06], (batch, 1)),
    )


@pytest.fixture(scope="module")
def big_batch():
    params = batch_params(20000)
    simulate = jax.jit(lambda key: match.simulate_batch(key, params, ENGINE))
    return simulate(jax.random.PRNGKey(7))


def test_same_key_same_trajectory() -> None:
    params = batch_params(64)
    simulate = jax.jit(lambda key: match.simulate_batch(key, params, ENGINE))
    first = simulate(jax.random.PRNGKey(3))
    second = simulate(jax.random.PRNGKey(3))
    other = simulate(jax.random.PRNGKey(4))
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(first[1].shots), np.asarray(other[1].shots))


def test_step_is_deterministic_and_plays_to_full_time() -> None:
    params = jax.tree.map(lambda x: x[0], batch_params(1))
    step = jax.jit(match.step)
    states = []
    for _ in range(2):
        key = jax.random.PRNGKey(11)
        state = match.reset(key, params, ENGINE)
        trace = []
        for _ in range(MAX_TICKS):
            key, sub = jax.random.split(key)
            state, _ = step(sub, state, params, ENGINE)
            trace.append(np.asarray(state.score).copy())
        states.append((state, np.array(trace)))
    np.testing.assert_array_equal(states[0][1], states[1][1])
    final = states[0][0]
    assert bool(final.done)
    assert int(final.minute) == 90 and int(final.period) == 2
    assert int(final.added) == int(final.stoppage_second)
    # Stepping a finished match changes nothing.
    again, events = step(jax.random.PRNGKey(0), final, params, ENGINE)
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(final), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(events.goals.sum()) == 0 and not bool(events.played)


def test_clock_sequence_has_stoppage_minutes() -> None:
    params = batch_params(256)
    state, events = jax.jit(lambda k: match.simulate_batch(k, params, ENGINE))(
        jax.random.PRNGKey(1)
    )
    played = np.asarray(events.played)
    period = np.asarray(events.period)
    minute = np.asarray(events.minute)
    added = np.asarray(events.added)
    first_stoppage = np.asarray(state.stoppage_first)
    second_stoppage = np.asarray(state.stoppage_second)
    np.testing.assert_array_equal(played.sum(1), 90 + first_stoppage + second_stoppage)
    for b in range(8):
        ticks = played[b]
        clock = list(zip(period[b][ticks], minute[b][ticks], added[b][ticks], strict=True))
        expected = (
            [(1, m, 0) for m in range(1, 46)]
            + [(1, 45, k) for k in range(1, first_stoppage[b] + 1)]
            + [(2, m, 0) for m in range(46, 91)]
            + [(2, 90, k) for k in range(1, second_stoppage[b] + 1)]
        )
        assert clock == expected
    assert (first_stoppage >= 0).all() and (first_stoppage <= STOPPAGE_FIRST_MAX).all()
    assert (second_stoppage >= 0).all() and (second_stoppage <= STOPPAGE_SECOND_MAX).all()


def test_counts_never_negative_and_scores_never_decrease(big_batch) -> None:
    state, events = big_batch
    for field in ("goals", "shots", "shots_on_target", "corners", "fouls", "yellow_cards"):
        assert (np.asarray(getattr(events, field)) >= 0).all(), field
    goals = np.asarray(events.goals)
    assert (goals.sum(1) == np.asarray(state.score)).all()
    # Goals are shots on target, which are shots.
    assert (np.asarray(state.score) <= np.asarray(state.shots_on_target)).all()
    assert (np.asarray(state.shots_on_target) <= np.asarray(state.shots)).all()


def test_means_match_requested_rates(big_batch) -> None:
    """Mean counts within a 99.9% interval of the requested expectations."""
    state, _ = big_batch
    n = state.score.shape[0]
    checks = {
        "score": (1.6, 1.2, 1.7),
        "shots": (13.0, 11.0, 2.5),
        "shots_on_target": (4.6, 3.9, 1.5),
        "corners": (5.5, 4.5, 2.0),
        "fouls": (10.5, 11.0, 1.3),
        "yellow_cards": (1.6, 1.9, 1.2),
    }
    for field, (home, away, dispersion) in checks.items():
        values = np.asarray(getattr(state, field), dtype=float)
        for side, expected in enumerate((home, away)):
            # Standard error from a generous variance bound (over-dispersed counts).
            stderr = np.sqrt(expected * dispersion / n)
            # The analytic normaliser ignores score effects; default engine has none.
            assert abs(values[:, side].mean() - expected) < 3.3 * stderr + 0.01 * expected, (
                field,
                side,
                values[:, side].mean(),
                expected,
            )


def test_stronger_attack_scores_more() -> None:
    low = batch_params(4000, goals=(1.0, 1.0))
    high = batch_params(4000, goals=(2.0, 1.0))
    run = jax.jit(lambda k, p: match.simulate_batch(k, p, ENGINE)[0].score)
    low_goals = np.asarray(run(jax.random.PRNGKey(0), low))[:, 0].mean()
    high_goals = np.asarray(run(jax.random.PRNGKey(0), high))[:, 0].mean()
    assert high_goals > low_goals + 0.8


def test_goals_follow_pressure() -> None:
    """Goal minutes carry higher pressure than average: goals tend to follow momentum."""
    engine = make_engine_params(momentum_std=0.5, momentum_goal_loading=1.0)
    params = jax.tree.map(lambda x: x[0], batch_params(1))

    def run(key):
        state = match.reset(key, params, engine)

        def body(carry, k):
            new, events = match.step(k, carry, params, engine)
            return new, (carry.momentum, events.goals)

        _, (momentum, goals) = jax.lax.scan(body, state, jax.random.split(key, MAX_TICKS))
        return momentum, goals

    momentum, goals = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(2), 3000))
    momentum, goals = np.asarray(momentum), np.asarray(goals)
    assert momentum[goals == 1].mean() > momentum.mean() + 0.1


def test_red_card_lowers_own_goal_rate() -> None:
    params = jax.tree.map(lambda x: x[0], batch_params(1))
    state = match.reset(jax.random.PRNGKey(0), params, ENGINE).replace(momentum=jnp.zeros(2))
    base = match.goal_rates(state, params, ENGINE, jnp.int32(2), jnp.int32(60))
    sent_off = state.replace(red_cards=jnp.array([1, 0], dtype=jnp.int32))
    after = match.goal_rates(sent_off, params, ENGINE, jnp.int32(2), jnp.int32(60))
    assert after[0] < base[0] and after[1] > base[1]


def test_shared_factor_lowers_scoring() -> None:
    params = batch_params(8000)
    run = jax.jit(lambda k, s: match.simulate_batch(k, params, ENGINE, shared_factor=s)[0].score)
    normal = np.asarray(run(jax.random.PRNGKey(5), 0.0)).sum(1).mean()
    bad_weather = np.asarray(run(jax.random.PRNGKey(5), -0.3)).sum(1).mean()
    assert bad_weather < normal * 0.85


def test_later_minutes_score_more() -> None:
    """Dixon–Robinson: the scoring rate rises through a half."""
    engine = make_engine_params(first_half_slope=0.3, second_half_slope=0.3)
    params = batch_params(20000)
    _, events = jax.jit(lambda k: match.simulate_batch(k, params, engine))(jax.random.PRNGKey(9))
    goals = np.asarray(events.goals).sum(-1)
    minute = np.asarray(events.minute)
    added = np.asarray(events.added)
    early = goals[(minute <= 15) & (added == 0)].sum()
    late = goals[(minute > 75) & (minute <= 90) & (added == 0)].sum()
    assert late > early * 1.2


@settings(max_examples=25, deadline=None)
@given(
    home=st.floats(0.0, 5.0),
    away=st.floats(0.0, 5.0),
    seed=st.integers(0, 2**31 - 1),
    stoppage_mean=st.floats(0.0, 8.0),
)
def test_invariants_for_any_rates(home: float, away: float, seed: int, stoppage_mean: float):
    engine = make_engine_params(stoppage_second_mean=stoppage_mean, openness_std=0.5)
    params = make_match_params(
        goals=[home, away],
        shots=[max(home, away) + 10, max(home, away) + 9],
        shots_on_target=[max(home, away) + 1, max(home, away) + 1],
    )
    state, events = _simulate_one(jax.random.PRNGKey(seed), params, engine)
    assert bool(state.done)
    assert int(state.stoppage_second) >= 0 and int(state.stoppage_first) >= 0
    score_path = np.cumsum(np.asarray(events.goals), axis=0)
    assert (np.diff(score_path, axis=0) >= 0).all()
    for field in ("score", "shots", "corners", "fouls", "yellow_cards", "red_cards"):
        assert (np.asarray(getattr(state, field)) >= 0).all()
    assert np.isfinite(np.asarray(state.momentum)).all()
    assert float(clock_minute(state)) == 90 + int(state.stoppage_second)


_simulate_one = jax.jit(match.simulate)


def test_engine_params_reject_out_of_range() -> None:
    with pytest.raises(ValueError, match="stoppage_first_mean"):
        make_engine_params(stoppage_first_mean=-1.0)
    with pytest.raises(ValueError, match="unknown field 'lead_efect'"):
        make_engine_params(lead_efect=0.1)
    with pytest.raises(ValueError, match="momentum_std"):
        make_engine_params(momentum_std=float("nan"))


def test_match_params_reject_bad_rates() -> None:
    with pytest.raises(ValueError, match=r"MatchParams.goals.*index \(1,\)|MatchParams.goals.*1"):
        make_match_params(goals=[1.0, -0.5])
    with pytest.raises(ValueError, match="shots_on_target"):
        make_match_params(goals=[1.0, 1.0], shots=[3.0, 10.0], shots_on_target=[4.0, 4.0])
    with pytest.raises(ValueError, match="last axis of size 2"):
        make_match_params(goals=[1.0, 1.0, 1.0])


def test_score_state_effects_create_dixon_coles_dependence() -> None:
    """Dixon–Robinson score effects give the low-score dependence of Dixon–Coles (ρ < 0).

    A side that leads slows down and a trailing side pushes: more 1-1 and 0-0, fewer
    1-0 and 0-1 than independent Poissons, i.e. a negative ρ, as in real leagues.
    """
    from market_sim.dixon_coles import fit_dixon_coles

    params = batch_params(30000, goals=(1.5, 1.2))
    rhos = {}
    for name, engine in {
        "independent": make_engine_params(),
        "score_effects": make_engine_params(lead_effect=-0.25, trail_effect=0.25),
    }.items():
        state, _ = jax.jit(lambda k, e: match.simulate_batch(k, params, e))(
            jax.random.PRNGKey(0), engine
        )
        score = np.asarray(state.score, dtype=float)
        # Two "teams" played many times: each fixture direction once (identifiable).
        home = np.tile([0, 1], score.shape[0] // 2)
        away = 1 - home
        fit = fit_dixon_coles(home, away, score[:, 0], score[:, 1], np.ones(home.size), 2)
        rhos[name] = float(fit.rho)
    assert abs(rhos["independent"]) < 0.03, rhos
    assert rhos["score_effects"] < -0.05, rhos

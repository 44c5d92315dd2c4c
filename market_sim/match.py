"""In-play match engine: one match per call, minute ticks, pure JAX.

``reset(key, params, engine) -> MatchState`` draws the hidden per-match quantities
(stoppage times, openness, initial momentum); ``step(key, state, params, engine,
shared_factor) -> (state, events)`` plays the next minute; ``simulate`` plays a whole
match with ``lax.scan``. Batch with ``jax.vmap`` (params ``[B, 2]``, engine broadcast).

Per minute and side:

- goals: a Bernoulli draw with the Dixon–Robinson intensity of ``EngineParams`` (rising
  through each half, score-state and red-card dependent, raised by pressure);
- shots (goals count as shots on target, which count as shots), shots on target,
  corners, fouls: Poisson counts capped at 3 per minute (one uniform each, inverse CDF);
  shots and corners are raised by the side's momentum and by trailing; a share of the
  corners is won from shots (thinning of the non-goal shots), the rest independently;
- yellow and red cards: Bernoulli;
- momentum: an exact discretisation of an Ornstein–Uhlenbeck process.

Every multiplier of the form exp(b·m) is divided by its stationary mean exp(b²σ²/2), so
momentum redistributes events in time without changing their expected totals.
A done match is left unchanged by ``step`` (no Python control flow on traced values).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from market_sim.params import (
    MAX_TICKS,
    EngineParams,
    MatchParams,
    goal_profile,
)
from market_sim.state import MatchEvents, MatchState

#: Uniform draws per tick: goals, non-goal shots, on-target, corners, fouls, yellows, reds,
#: corners from shots (two sides each).
UNIFORMS_PER_TICK = 16


def reset(key: jax.Array, params: MatchParams, engine: EngineParams) -> MatchState:
    """Pre-match state of one match; draws stoppage times, openness and initial momentum."""
    del params  # the pre-match state does not depend on the fixture's rates
    key_first, key_second, key_open, key_momentum = jax.random.split(key, 4)
    cdf_first = jnp.cumsum(engine.stoppage_first_pmf)
    cdf_second = jnp.cumsum(engine.stoppage_second_pmf)
    stoppage_first = jnp.searchsorted(cdf_first[:-1], jax.random.uniform(key_first), side="right")
    stoppage_second = jnp.searchsorted(
        cdf_second[:-1], jax.random.uniform(key_second), side="right"
    )
    openness = engine.openness_std * jax.random.normal(key_open) - 0.5 * engine.openness_std**2
    momentum = engine.momentum_std * jax.random.normal(key_momentum, (2,))
    zeros = jnp.zeros(2, dtype=jnp.int32)
    return MatchState(
        period=jnp.int32(0),
        minute=jnp.int32(0),
        added=jnp.int32(0),
        stoppage_first=stoppage_first.astype(jnp.int32),
        stoppage_second=stoppage_second.astype(jnp.int32),
        score=zeros,
        shots=zeros,
        shots_on_target=zeros,
        corners=zeros,
        fouls=zeros,
        yellow_cards=zeros,
        red_cards=zeros,
        momentum=momentum.astype(jnp.float32),
        openness=jnp.float32(openness),
        done=jnp.bool_(False),
    )


def _next_clock(state: MatchState) -> tuple[Any, Any, Any]:
    """(period, minute, added) of the tick to be played after ``state``."""
    in_first_regulation = (state.period == 1) & (state.minute < 45)
    first_stoppage_left = (
        (state.period == 1) & (state.minute == 45) & (state.added < state.stoppage_first)
    )
    to_second_half = (
        (state.period == 1) & (state.minute == 45) & (state.added >= state.stoppage_first)
    )
    in_second_regulation = (state.period == 2) & (state.minute < 90)
    kick_off = state.period == 0
    period = jnp.where(kick_off, 1, jnp.where(to_second_half, 2, state.period))
    minute = jnp.where(
        kick_off,
        1,
        jnp.where(
            in_first_regulation | in_second_regulation,
            state.minute + 1,
            jnp.where(to_second_half, 46, state.minute),
        ),
    )
    stoppage = (first_stoppage_left) | ((state.period == 2) & (state.minute == 90))
    added = jnp.where(stoppage, state.added + 1, 0)
    return period.astype(jnp.int32), minute.astype(jnp.int32), added.astype(jnp.int32)


def _capped_poisson(rate: Any, uniform: Any) -> Any:
    """min(Poisson(rate), 3) from one uniform by inverse CDF; rate per tick, shape [2]."""
    p0 = jnp.exp(-rate)
    p1 = rate * p0
    p2 = 0.5 * rate * p1
    return (
        (uniform > p0).astype(jnp.int32)
        + (uniform > p0 + p1).astype(jnp.int32)
        + (uniform > p0 + p1 + p2).astype(jnp.int32)
    )


def _binomial_small(count: Any, probability: Any, uniform: Any) -> Any:
    """Binomial(min(count, 3), probability) from one uniform, shape [2].

    Each trial consumes the uniform and rescales it (u/p after a success, (u-p)/(1-p)
    after a failure), which leaves an independent uniform for the next trial.
    """
    probability = jnp.clip(probability, 1e-6, 1.0 - 1e-6)
    total = jnp.zeros_like(count)
    for k in range(3):
        hit = uniform < probability
        total = total + (hit & (count > k)).astype(jnp.int32)
        uniform = jnp.where(
            hit, uniform / probability, (uniform - probability) / (1.0 - probability)
        )
    return total


def goal_rates(
    state: MatchState,
    params: MatchParams,
    engine: EngineParams,
    period: Any,
    minute: Any,
    shared_factor: Any = 0.0,
) -> Any:
    """Goal intensity per side (expected goals in the tick at ``period``/``minute``), [2]."""
    minute_in_half = jnp.where(period == 2, minute - 45, minute).astype(jnp.float32)
    profile = goal_profile(minute_in_half, period == 2, engine)
    lead = state.score - state.score[::-1]
    reds = jnp.minimum(state.red_cards, 2).astype(jnp.float32)
    loading = engine.momentum_goal_loading
    log_multiplier = (
        jnp.stack([engine.goal_scale_home, engine.goal_scale_away])
        + engine.lead_effect * (lead > 0)
        + engine.trail_effect * (lead < 0)
        + engine.total_goals_effect * jnp.minimum(state.score.sum(), 6).astype(jnp.float32)
        + engine.red_self_effect * reds
        + engine.red_opponent_effect * reds[::-1]
        + loading * state.momentum
        - 0.5 * (loading * engine.momentum_std) ** 2
        + state.openness
        + engine.shared_factor_loading * shared_factor
    )
    return params.goals / engine.goal_exposure * profile * jnp.exp(log_multiplier)


def advance(
    state: MatchState,
    uniforms: jax.Array,
    normals: jax.Array,
    params: MatchParams,
    engine: EngineParams,
    shared_factor: Any = 0.0,
) -> tuple[MatchState, MatchEvents]:
    """Play one tick given its random numbers: uniforms [14], normals [2]."""
    period, minute, added = _next_clock(state)
    u = uniforms.reshape(8, 2)

    rate_goal = goal_rates(state, params, engine, period, minute, shared_factor)
    goals = (u[0] < -jnp.expm1(-rate_goal)).astype(jnp.int32)

    duration = engine.expected_duration
    lead = jnp.sign(state.score - state.score[::-1]).astype(jnp.float32)
    game_state = -engine.shot_state_effect * lead
    shot_pressure = jnp.exp(
        engine.momentum_shot_loading * state.momentum
        - 0.5 * (engine.momentum_shot_loading * engine.momentum_std) ** 2
        + game_state
    )
    corner_pressure = jnp.exp(
        engine.momentum_corner_loading * state.momentum
        - 0.5 * (engine.momentum_corner_loading * engine.momentum_std) ** 2
        + game_state
    )
    other_shots_per_match = jnp.maximum(params.shots - params.goals, 0.0)
    other_shots = _capped_poisson(other_shots_per_match / duration * shot_pressure, u[1])
    on_target_share = jnp.clip(
        (params.shots_on_target - params.goals) / jnp.maximum(other_shots_per_match, 1e-6),
        0.0,
        1.0,
    )
    other_on_target = _binomial_small(other_shots, on_target_share, u[2])
    share = engine.corner_shot_share
    corners_from_shots = _binomial_small(
        other_shots,
        jnp.clip(share * params.corners / jnp.maximum(other_shots_per_match, 1e-6), 0.0, 1.0),
        u[7],
    )
    corners = corners_from_shots + _capped_poisson(
        (1.0 - share) * params.corners / duration * corner_pressure, u[3]
    )
    fouls = _capped_poisson(params.fouls / duration, u[4])
    yellows = (u[5] < params.yellow_cards / duration).astype(jnp.int32)
    reds = (u[6] < params.red_cards / duration).astype(jnp.int32)

    persistence = jnp.exp(-engine.momentum_reversion)
    momentum = (
        state.momentum * persistence
        + engine.momentum_std * jnp.sqrt(1.0 - persistence**2) * normals
    )

    events = MatchEvents(
        played=jnp.logical_not(state.done),
        period=period,
        minute=minute,
        added=added,
        goals=goals,
        shots=goals + other_shots,
        shots_on_target=goals + other_on_target,
        corners=corners,
        fouls=fouls,
        yellow_cards=yellows,
        red_cards=reds,
    )
    done = (period == 2) & (minute == 90) & (added >= state.stoppage_second)
    new_state = dataclasses.replace(
        state,
        period=period,
        minute=minute,
        added=added,
        score=state.score + events.goals,
        shots=state.shots + events.shots,
        shots_on_target=state.shots_on_target + events.shots_on_target,
        corners=state.corners + events.corners,
        fouls=state.fouls + events.fouls,
        yellow_cards=state.yellow_cards + events.yellow_cards,
        red_cards=state.red_cards + events.red_cards,
        momentum=momentum.astype(jnp.float32),
        done=done,
    )
    # A finished match stays as it is; its events for this tick are all zero.
    new_state = jax.tree.map(lambda new, old: jnp.where(state.done, old, new), new_state, state)
    events = jax.tree.map(lambda value: jnp.where(state.done, jnp.zeros_like(value), value), events)
    return new_state, events


def tick_randoms(key: jax.Array, num_ticks: int | None = None) -> tuple[jax.Array, jax.Array]:
    """Random numbers for ``num_ticks`` ticks (or one tick when None): uniforms, normals.

    Shapes ``[ticks, UNIFORMS_PER_TICK]`` and ``[ticks, 2]`` (no leading axis for one
    tick). The user's key seeds XLA's RngBitGenerator (``rbg``), and each 32-bit word
    yields two 16-bit uniforms, (k + 0.5)/65536: about nine times cheaper than threefry
    uniforms on CPU, which dominated the engine's cost. The 16-bit grid shifts an event
    probability by at most 7.6e-6 per tick (1.3% of a red card's per-minute chance).
    """
    shape = () if num_ticks is None else (num_ticks,)
    seed = jax.random.bits(key, (4,), dtype=jnp.uint32)
    fast = jax.random.wrap_key_data(seed, impl="rbg")
    key_bits, key_normal = jax.random.split(fast)
    bits = jax.random.bits(key_bits, (*shape, UNIFORMS_PER_TICK // 2), dtype=jnp.uint32)
    halves = jnp.concatenate([bits >> 16, bits & 0xFFFF], axis=-1)
    uniforms = (halves.astype(jnp.float32) + 0.5) / 65536.0
    normals = jax.random.normal(key_normal, (*shape, 2), dtype=jnp.float32)
    return uniforms, normals


def step(
    key: jax.Array,
    state: MatchState,
    params: MatchParams,
    engine: EngineParams,
    shared_factor: Any = 0.0,
) -> tuple[MatchState, MatchEvents]:
    """Play the next minute of one match (a no-op once ``state.done``)."""
    uniforms, normals = tick_randoms(key)
    return advance(state, uniforms, normals, params, engine, shared_factor)


def simulate(
    key: jax.Array,
    params: MatchParams,
    engine: EngineParams,
    shared_factor: Any = 0.0,
    num_ticks: int = MAX_TICKS,
) -> tuple[MatchState, MatchEvents]:
    """Play a whole match; returns the final state and per-tick events stacked on axis 0.

    ``num_ticks`` (static) defaults to ``MAX_TICKS``, enough for any stoppage draw.
    Random numbers for all ticks are drawn up front (one batched draw, cheaper than a
    draw per tick); trajectories therefore differ from calling ``step`` tick by tick
    with split keys, but are equally deterministic for a key.
    """
    key_reset, key_ticks = jax.random.split(key)
    state = reset(key_reset, params, engine)
    uniforms, normals = tick_randoms(key_ticks, num_ticks)

    def body(carry: MatchState, randoms: tuple[jax.Array, jax.Array]) -> Any:
        return advance(carry, randoms[0], randoms[1], params, engine, shared_factor)

    return jax.lax.scan(body, state, (uniforms, normals))


def simulate_batch(
    key: jax.Array,
    params: MatchParams,
    engine: EngineParams,
    shared_factor: Any = 0.0,
    num_ticks: int = MAX_TICKS,
) -> tuple[MatchState, MatchEvents]:
    """``simulate`` vmapped over a batch: params fields ``[B, 2]``, shared_factor ``[B]`` or scalar.

    Returns final states with leading axis B and events with axes [B, ticks, ...].
    """
    batch = params.goals.shape[0]
    keys = jax.random.split(key, batch)
    shared = jnp.broadcast_to(jnp.asarray(shared_factor, dtype=jnp.float32), (batch,))
    return jax.vmap(simulate, in_axes=(0, 0, None, 0, None))(
        keys, params, engine, shared, num_ticks
    )

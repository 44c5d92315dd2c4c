"""Evaluate policies on common random numbers: every policy meets the same seeds.

An evaluation seed s stands for ``rounds`` slates; slate r of seed s is driven by the key
``fold_in(fold_in(PRNGKey(0), s), r)`` for the market, the matches and the crowd, whatever
the policy does (our fills still move prices, so paths differ only through our own
actions). A policy's own randomness (the ``random`` baseline, a stochastic policy) comes
from a separate key stream. Each slate starts with the configured bankroll; the seed's
rounds are chained (compounded) for drawdowns.

``rollout`` returns per-tick records as numpy arrays; ``agents.metrics`` turns them into
the metrics of the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from agents.policy import HostPolicy, JaxPolicy, Policy
from envs import functional
from envs.functional import EnvParams
from market_sim import market as market_lib

#: Index of the Hard-Cap column among the observation's global columns.
_HARD_CAP = functional.GLOBAL_COLUMNS.index("hard_cap")
_POLICY_STREAM = 0x5EED


@dataclass
class Trajectories:
    """Per-tick records of ``E = len(seeds) × rounds`` slates (episode e = seed-major).

    Shapes: ``equity`` [E, T+1] (currency, tick 0 = start), ``fills``/``executed_odds``/
    ``cas``/``bet_types`` [E, T, M, 5], ``minute`` [E, T, M], ``pre_match`` [E, T],
    ``exposure`` and ``hard_cap`` [E, T] (fractions of bankroll), ``closing_odds`` and
    ``won`` [E, M, 5], ``alive`` [E, T] (False after bankruptcy ended the episode).
    """

    seeds: list[int]
    rounds: int
    bankroll: float
    equity: np.ndarray
    fills: np.ndarray
    executed_odds: np.ndarray
    cas: np.ndarray
    bet_types: np.ndarray
    minute: np.ndarray
    pre_match: np.ndarray
    exposure: np.ndarray
    hard_cap: np.ndarray
    closing_odds: np.ndarray
    won: np.ndarray
    alive: np.ndarray


@jax.jit
def _reset_batch(keys: jax.Array, params: EnvParams) -> tuple[Any, Any]:
    return jax.vmap(functional.reset, in_axes=(0, None))(keys, params)


def episode_keys(seeds: Sequence[int], rounds: int) -> jax.Array:
    """Market keys [len(seeds) × rounds, 2]: the common random numbers of the evaluation."""
    base = jax.random.PRNGKey(0)
    return jnp.stack(
        [
            jax.random.fold_in(jax.random.fold_in(base, int(seed)), r)
            for seed in seeds
            for r in range(rounds)
        ]
    )


@jax.jit
def _env_tick(
    keys: jax.Array, state: Any, action: jax.Array, alive: jax.Array, t: Any, params: EnvParams
) -> tuple[Any, ...]:
    """One batched step (no autoreset) and the per-tick records; compiled once per layout."""
    action = jnp.where(alive[:, None], action, -1.0)
    step_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, t + 1)
    obs, new_state, _, done, info = jax.vmap(functional.step, in_axes=(0, 0, 0, None))(
        step_keys, state, action, params
    )
    bankroll = jnp.maximum(
        new_state.market.cash + new_state.market.our_stakes.sum(axis=(1, 2)), 1e-6
    )
    hard_cap_column = functional.observation_size(params) - len(functional.GLOBAL_COLUMNS)
    records = {
        "equity": info["equity"],
        "fills": info["executed_stakes"],
        "executed_odds": info["executed_odds"],
        "cas": info["cas"],
        "bet_types": info["bet_types"],
        "minute": info["minute"],
        "pre_match": state.market.tick < params.market.pre_match_ticks,
        "exposure": new_state.market.our_stakes.sum(axis=(1, 2)) / bankroll,
        "hard_cap": obs[:, hard_cap_column + _HARD_CAP],
    }
    return obs, new_state, alive & ~done, records


def _policy_keys(keys: jax.Array, t: Any) -> jax.Array:
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))
    return fold(fold(keys, _POLICY_STREAM), t)


def _make_act(policy: Policy, params: EnvParams) -> Any:
    """The batched action function of a policy (jitted for JAX policies)."""
    if isinstance(policy, JaxPolicy):

        def act(keys: jax.Array, obs: jax.Array, state: Any, t: Any) -> jax.Array:
            return jax.vmap(policy.function, in_axes=(0, 0, 0, None))(
                _policy_keys(keys, t), obs, state, params
            )

        return jax.jit(act)
    if isinstance(policy, HostPolicy):

        def host_act(keys: jax.Array, obs: jax.Array, state: Any, t: Any) -> jax.Array:
            del keys, state, t
            return jnp.asarray(policy.function(np.asarray(obs)), jnp.float32)

        return host_act
    raise TypeError(f"policy: expected a JaxPolicy or HostPolicy, got {type(policy).__name__}")


def rollout(policy: Policy, params: EnvParams, seeds: Sequence[int], rounds: int) -> Trajectories:
    """Run ``policy`` on ``rounds`` slates per seed (common random numbers); see module doc."""
    if params.season_rounds != 1:
        raise ValueError("rollout evaluates single slates: build params with season_mode=False")
    if rounds < 1 or not seeds:
        raise ValueError(f"rollout: need ≥ 1 seed and ≥ 1 round, got {len(seeds)} and {rounds}")
    keys = episode_keys(seeds, rounds)
    obs, state = _reset_batch(keys, params)
    act = _make_act(policy, params)
    ticks = market_lib.episode_ticks(params.market)
    alive = jnp.ones(keys.shape[0], bool)
    records: dict[str, list[np.ndarray]] = {}
    for t in range(ticks):
        action = act(keys, obs, state, t)
        obs, state, alive_next, record = _env_tick(keys, state, action, alive, t, params)
        record["alive"] = alive
        for name, value in record.items():
            records.setdefault(name, []).append(np.asarray(value))
        alive = alive_next
    stacked = {name: np.stack(values, axis=1) for name, values in records.items()}
    bankroll = float(params.market.bankroll)
    start = np.full((keys.shape[0], 1), bankroll)
    return Trajectories(
        seeds=[int(s) for s in seeds],
        rounds=rounds,
        bankroll=bankroll,
        equity=np.concatenate([start, stacked["equity"]], axis=1),
        fills=stacked["fills"],
        executed_odds=stacked["executed_odds"],
        cas=stacked["cas"],
        bet_types=stacked["bet_types"],
        minute=stacked["minute"],
        pre_match=stacked["pre_match"],
        exposure=stacked["exposure"],
        hard_cap=stacked["hard_cap"],
        closing_odds=np.asarray(state.market.closing_odds),
        won=np.asarray(market_lib.outcome_indicators(state.market.match.score)),
        alive=stacked["alive"],
    )

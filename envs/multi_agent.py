"""``FootballMarketParallelEnv``: several bettors trading in one simulated market (PettingZoo).

Agents (default ``("ours", "sharp", "square")``) have their own bankrolls and their own
information edge: each sees the oracle probability tilted by a persistent per-match logit
error of sd ``model_noise[agent]`` (default 0.15 / 0.05 / 0.40). The crowd stays scripted
(``market_sim.crowd``). One episode = one slate of ``market_sim.market``, one step = one
market tick, as in ``tetra/FootballMarket-v0``.

Each step:

1. every agent's action [M·5] is projected onto *its own* caps (its bankroll and cash,
   its open bets) with ``envs.functional.action_to_stakes``;
2. the agents' stakes are summed into one ``market_sim.market.step`` (one price for
   everybody, the combined flow moves the odds, so each agent's price impact and γ
   depend on the others); the market fills min(total, depth) and each agent gets the
   fills pro rata to its projected stake (design option (a));
3. each agent's open bets, cash and payout are tracked separately and settled at full
   time with ``outcome_indicators``; reward = Δ log equity of that agent (equity = cash +
   cash-out value of its open bets).

Observations: the simulator's layout (``envs.functional.get_obs``) built from a per-agent
``EnvState`` view (the shared market with the agent's own cash, open bets, model
probabilities, signal windows, equity and drawdown). γ per agent (``infos[a]["gamma"]``)
is the rolling correlation of *its own* net home flow with the market's next moves.

The adaptive bookmaker agent (margin and price skew as actions) is not implemented:
``bookmaker_agent=True`` raises ``NotImplementedError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from pettingzoo import ParallelEnv

from envs import functional
from envs.config import make_params
from envs.functional import OBS_BOUND, EnvParams, EnvState
from envs.gym_env import validate_action
from market_sim import market as market_lib
from market_sim import signals
from market_sim.signals import RingBuffer

#: Default agents and their information edge (logit noise sd of their model).
DEFAULT_AGENTS: dict[str, float] = {"ours": 0.15, "sharp": 0.05, "square": 0.4}


class FootballMarketParallelEnv(ParallelEnv):
    """PettingZoo parallel env: several bettors, one market (see the module docstring).

    ``agents``: names (default ``DEFAULT_AGENTS``); ``model_noise``: one sd per agent
    (mapping or sequence); other keyword arguments go to ``envs.config.make_params``
    (``n_matches``, ``regime``, ``bankroll`` = each agent's starting bankroll, …).
    """

    metadata = {"render_modes": [], "name": "football_market_parallel_v0"}

    def __init__(
        self,
        agents: Sequence[str] | None = None,
        model_noise: Mapping[str, float] | Sequence[float] | None = None,
        bookmaker_agent: bool = False,
        **kwargs: Any,
    ) -> None:
        if bookmaker_agent:
            raise NotImplementedError("bookmaker_agent=True: the adaptive bookmaker is not done")
        names = list(DEFAULT_AGENTS) if agents is None else [str(a) for a in agents]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"agents: expected distinct names, got {names!r}")
        if model_noise is None:
            noise = [DEFAULT_AGENTS.get(name, 0.15) for name in names]
        elif isinstance(model_noise, Mapping):
            missing = [name for name in names if name not in model_noise]
            if missing:
                raise ValueError(f"model_noise: no value for agents {missing}")
            noise = [float(model_noise[name]) for name in names]
        else:
            noise = [float(v) for v in model_noise]
            if len(noise) != len(names):
                raise ValueError(
                    f"model_noise: expected {len(names)} values (one per agent), got {len(noise)}"
                )
        for name, sd in zip(names, noise, strict=True):
            if not 0.0 <= sd <= 5.0:
                raise ValueError(f"model_noise[{name!r}]: expected in [0, 5], got {sd}")
        if kwargs.get("season_mode"):
            raise ValueError("season_mode: the multi-agent env plays one slate per episode")
        self.params = make_params(**kwargs)
        self.possible_agents = names
        self.agents: list[str] = []
        self.model_noise = dict(zip(names, noise, strict=True))
        m = self.params.market.n_matches
        size = functional.observation_size(self.params)
        self._observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (size,), np.float32)
        self._action_space = gym.spaces.Box(-1.0, 1.0, (m * 5,), np.float32)
        self._action_spaces = {name: self._action_space for name in names}
        self.observation_names = functional.observation_names(self.params)
        self._noise = jnp.asarray(noise, jnp.float32)
        self._key = jax.random.PRNGKey(0)
        self._states: list[EnvState] | None = None
        self._flows: list[RingBuffer] | None = None

    def observation_space(self, agent: str) -> gym.spaces.Box:
        return self._observation_space

    def action_space(self, agent: str) -> gym.spaces.Box:
        return self._action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        if seed is not None:
            self._key = jax.random.PRNGKey(seed)
            for i, space in enumerate(self._action_spaces.values()):
                space.seed(seed + i)
        self._key, key = jax.random.split(self._key)
        observations, self._states, self._flows = _RESET(key, self.params, self._noise)
        self.agents = list(self.possible_agents)
        obs = {a: np.asarray(observations[i]) for i, a in enumerate(self.possible_agents)}
        return obs, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self._states is None or not self.agents:
            raise RuntimeError("call reset() before step() (the episode is over)")
        unknown = sorted(set(actions) - set(self.agents))
        if unknown:
            raise ValueError(f"actions: unknown agents {unknown}; live agents: {self.agents}")
        stacked = []
        for name in self.possible_agents:
            if name in actions:
                action = validate_action(actions[name], self._action_space.shape)
            else:  # an agent that sends nothing bets nothing
                action = np.zeros(self._action_space.shape, np.float32)
            stacked.append(action)
        self._key, key = jax.random.split(self._key)
        observations, self._states, self._flows, rewards, done, info = _STEP(
            key, self._states, self._flows, jnp.asarray(np.stack(stacked)), self.params
        )
        done = bool(done)
        obs, rew, term, trunc, infos = {}, {}, {}, {}, {}
        for i, name in enumerate(self.possible_agents):
            if name not in self.agents:
                continue
            obs[name] = np.asarray(observations[i])
            rew[name] = float(rewards[i])
            term[name] = done
            trunc[name] = False
            infos[name] = {key: np.asarray(value[i]) for key, value in info.items()}
        if done:
            self.agents = []
        return obs, rew, term, trunc, infos


# ------------------------------------------------------------------- pure core


def _agent_view(state: EnvState, shared: market_lib.MarketState) -> EnvState:
    """The agent's state on the shared market: its own cash and open bets kept."""
    mine = state.market
    market = dataclasses.replace(
        shared, cash=mine.cash, our_stakes=mine.our_stakes, our_payout=mine.our_payout
    )
    return dataclasses.replace(state, market=market)


def _reset(
    key: jax.Array, params: EnvParams, noise: jax.Array
) -> tuple[jax.Array, list[EnvState], list[RingBuffer]]:
    key_market, *keys = jax.random.split(key, noise.shape[0] + 1)
    market = market_lib.reset(key_market, params.market)
    states, observations, flows = [], [], []
    for i, agent_key in enumerate(keys):
        agent_params = dataclasses.replace(params, model_noise=noise[i])
        state = functional._env_state(agent_key, market, agent_params, 0)
        states.append(state)
        observations.append(functional.get_obs(state, params))
        flows.append(signals.ring_init(params.market.gamma_window, (params.market.n_matches,)))
    return jnp.stack(observations), states, flows


def _step(
    key: jax.Array,
    states: list[EnvState],
    flows: list[RingBuffer],
    actions: jax.Array,
    params: EnvParams,
) -> tuple[jax.Array, list[EnvState], list[RingBuffer], jax.Array, jax.Array, dict[str, Any]]:
    shared = states[0].market
    stakes = [functional.action_to_stakes(actions[i], s, params)[0] for i, s in enumerate(states)]
    total = sum(stakes)
    cash_total = sum(s.market.cash for s in states)
    pooled = dataclasses.replace(
        shared,
        cash=cash_total,
        our_stakes=sum(s.market.our_stakes for s in states),
        our_payout=sum(s.market.our_payout for s in states),
    )
    new_shared, info = market_lib.step(key, pooled, total, params.market)
    # Pro-rata split of the fills (every agent got the same price).
    share = info.fills / jnp.maximum(total, 1e-9)
    won = market_lib.outcome_indicators(new_shared.match.score)
    settle = (new_shared.settled & ~shared.settled)[:, None]
    gamma_signal = signals.momentum_corr
    new_states, new_flows, rewards, gammas, fills_out, pnl_out = [], [], [], [], [], []
    for i, state in enumerate(states):
        mine = state.market
        fills = stakes[i] * share
        our_stakes = mine.our_stakes + fills
        our_payout = mine.our_payout + fills * info.executed_odds
        payout = jnp.where(settle, our_payout * won, 0.0)
        pnl = jnp.where(settle, payout - our_stakes, 0.0)
        cash = jnp.maximum(mine.cash - fills.sum(), 0.0) + payout.sum()
        market_i = dataclasses.replace(
            new_shared,
            cash=cash,
            our_stakes=jnp.where(settle, 0.0, our_stakes),
            our_payout=jnp.where(settle, 0.0, our_payout),
        )
        previous = _agent_view(state, shared)
        pushed = functional._push_signals(previous, market_i, previous.market)
        flow = signals.ring_push(flows[i], fills[:, 0] - fills[:, 2])
        gamma = jnp.mean(
            signals.market_sensitivity(flow, functional._per_match(new_shared.move_window))
        )
        signal_corr = gamma_signal(pushed.edges.values[:, 0, :], pushed.prob_changes.values)
        mode = signals.update_mode(state.mode, gamma, jnp.mean(signal_corr))
        equity = functional._equity(market_i)
        rewards.append(
            jnp.log(jnp.maximum(equity, 1e-6)) - jnp.log(jnp.maximum(state.equity, 1e-6))
        )
        new_states.append(
            dataclasses.replace(
                pushed,
                mode=mode,
                equity=equity,
                peak_equity=jnp.maximum(state.peak_equity, equity),
                steps=state.steps + 1,
            )
        )
        new_flows.append(flow)
        gammas.append(gamma)
        fills_out.append(fills)
        pnl_out.append(pnl.sum())
    observations = jnp.stack([functional.get_obs(s, params) for s in new_states])
    equities = jnp.stack([s.equity for s in new_states])
    infos = {
        "executed_stakes": jnp.stack(fills_out),
        "projected_stakes": jnp.stack(stakes),
        "executed_odds": jnp.broadcast_to(info.executed_odds, (len(states), *total.shape)),
        "equity": equities,
        "cash": jnp.stack([s.market.cash for s in new_states]),
        "gamma": jnp.stack(gammas),
        "mode": jnp.stack([s.mode for s in new_states]),
        "settled_pnl": jnp.stack(pnl_out),
        "minute": jnp.broadcast_to(info.minute, (len(states), *info.minute.shape)),
    }
    return (
        observations,
        new_states,
        new_flows,
        jnp.stack(rewards).astype(jnp.float32),
        info.done,
        infos,
    )


# Module-level jits: every instance with the same static shapes shares the compilation.
_RESET = jax.jit(_reset)
_STEP = jax.jit(_step)

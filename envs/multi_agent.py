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

**Adaptive bookmaker** (``bookmaker_agent=True``): one more agent, ``"bookmaker"``
(``BOOKMAKER``), prices the market; the crowd stays scripted.

- Action: ``Box`` [-1, 1] of shape [M·2], per match (match-major) a margin level and a
  home/away skew. ``a_margin`` → margin multiplier ``margin_range ** a_margin`` (default
  range 2: 0.5× … 2× the regime bookmaker's margin, 1× at 0) of each market's overround;
  ``a_skew`` → ``a_skew × max_skew`` log-odds (default 0.25) moving fair probability from
  away to home (> 0) or back within the 1X2 book (``market_sim.bookmaker.QuoteAdjustment``).
  Finite values outside [-1, 1] are clipped; NaN/inf or a wrong shape raise
  ``ValueError``. Prices stay valid: every price in [1.01, 500], overround = multiplier ×
  the regime quote's (so ≥ 0 wherever that one is).
- Timing: the action of step t is applied to the requote at the end of step t
  (``market_sim.market.step(..., adjustment=...)``), i.e. to the prices the bettors see
  in their observation of step t and are filled at in step t + 1 (quote, then trade; the
  crowd reacts to the same prices). The snapshot quote of ``reset`` is the regime's.
- Reward: the book's P&L of the step divided by its reference bankroll
  (``bookmaker_bankroll``, default ``DEFAULT_BOOKMAKER_BANKROLL_PER_MATCH`` × M), i.e. the
  change of its equity E = bankroll + money taken − liabilities, liabilities = payouts
  owed on settled matches, payout × p_mkt (the book's own de-margined price) on open
  ones. Risk-neutral (linear, no log): the book cannot go bust in the simulator. Summed
  over an episode it is the realised P&L, which is exactly minus the bettors' plus the
  crowd's P&L (zero-sum; pinned by a test). Marking open liabilities at p_mkt counts the
  expected take (stake × (1 − odds · p_mkt) ≥ 0 with a margin) when a bet is taken;
  bettors mark their bets at the cash-out value payout / odds instead, so mark-to-market
  P&Ls are zero-sum only up to that margin.
- Observation: a dedicated ``Box`` [M·len(BOOKMAKER_MATCH_COLUMNS) +
  len(BOOKMAKER_GLOBAL_COLUMNS)] (names in ``bookmaker_observation_names``): the match
  state, p_mkt and overrounds, the book's liability skew and its exposure per selection
  (its P&L in that market if the selection wins, / bankroll), then its equity change and
  the episode progress. It sees neither the oracle nor the bettors' models.
- ``infos["bookmaker"]``: ``equity``, ``pnl`` (this step), ``take`` (expected take of the
  step's fills at p_mkt), ``settled_pnl`` (realised on matches settled this step),
  ``flow``/``executed_odds`` [M, 5] (all money taken, the price it was taken at),
  ``margin_multiplier``/``home_away_skew`` [M] (the applied action), ``overround``
  [M, 2] (of the new quote), ``minute``.

Caveat: the scripted crowd's volume does not depend on the margin (only informed money
reacts to prices, and it bets less at worse prices), so against the crowd alone the
largest margin is always best; the bettor agents are what disciplines the margin.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from pettingzoo import ParallelEnv

from envs import functional
from envs.config import make_params
from envs.functional import OBS_BOUND, EnvParams, EnvState
from envs.gym_env import validate_action
from market_sim import market as market_lib
from market_sim import signals
from market_sim.bookmaker import SELECTION_NAMES, QuoteAdjustment
from market_sim.signals import RingBuffer
from market_sim.state import clock_minute

#: Default agents and their information edge (logit noise sd of their model).
DEFAULT_AGENTS: dict[str, float] = {"ours": 0.15, "sharp": 0.05, "square": 0.4}

#: Name of the adaptive bookmaker agent (``bookmaker_agent=True``).
BOOKMAKER = "bookmaker"
#: Default reference bankroll of the bookmaker per match of the slate (currency): about
#: the money the default crowd puts through one match's book over an episode.
DEFAULT_BOOKMAKER_BANKROLL_PER_MATCH = 250_000.0
#: Bookmaker observation columns per match (in order), then the global ones.
BOOKMAKER_MATCH_COLUMNS: tuple[str, ...] = (
    "minute",
    "pre_match",
    "score_home",
    "score_away",
    "red_cards_home",
    "red_cards_away",
    "suspended",
    "settled",
    "liquidity",
    *(f"market_probability_{s}" for s in SELECTION_NAMES),
    "overround_1x2",
    "overround_ou25",
    *(f"liability_skew_{s}" for s in SELECTION_NAMES),
    *(f"exposure_{s}" for s in SELECTION_NAMES),
)
BOOKMAKER_GLOBAL_COLUMNS: tuple[str, ...] = ("equity_change", "progress")


@struct.dataclass
class BookmakerAgentParams:
    """The adaptive bookmaker's scales (scalars, currency for ``bankroll``).

    ``bankroll``: reference equity (reward = P&L / bankroll); ``margin_range``: the
    margin multiplier spans [1 / range, range]; ``max_skew``: the largest home/away
    log-odds skew.
    """

    bankroll: Any
    margin_range: Any = 2.0
    max_skew: Any = 0.25


class FootballMarketParallelEnv(ParallelEnv):
    """PettingZoo parallel env: several bettors, one market (see the module docstring).

    ``agents``: the bettors' names (default ``DEFAULT_AGENTS``); ``model_noise``: one sd
    per bettor (mapping or sequence); ``bookmaker_agent``: add the adaptive bookmaker
    ``"bookmaker"`` with ``bookmaker_bankroll`` (default
    ``DEFAULT_BOOKMAKER_BANKROLL_PER_MATCH`` × n_matches), ``bookmaker_margin_range``
    (> 1, default 2) and ``bookmaker_max_skew`` (log-odds, default 0.25); other keyword
    arguments go to ``envs.config.make_params`` (``n_matches``, ``regime``, ``bankroll``
    = each bettor's starting bankroll, …).
    """

    metadata = {"render_modes": [], "name": "football_market_parallel_v0"}

    def __init__(
        self,
        agents: Sequence[str] | None = None,
        model_noise: Mapping[str, float] | Sequence[float] | None = None,
        bookmaker_agent: bool = False,
        bookmaker_bankroll: float | None = None,
        bookmaker_margin_range: float = 2.0,
        bookmaker_max_skew: float = 0.25,
        **kwargs: Any,
    ) -> None:
        names = list(DEFAULT_AGENTS) if agents is None else [str(a) for a in agents]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"agents: expected distinct names, got {names!r}")
        if bookmaker_agent and BOOKMAKER in names:
            raise ValueError(
                f"agents: {BOOKMAKER!r} is the adaptive bookmaker's name with "
                "bookmaker_agent=True; rename the bettor"
            )
        if not bookmaker_agent and (
            bookmaker_bankroll is not None
            or bookmaker_margin_range != 2.0
            or bookmaker_max_skew != 0.25
        ):
            raise ValueError("bookmaker_* options need bookmaker_agent=True")
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
        m = self.params.market.n_matches
        self.bettors = names
        self.possible_agents = [*names, BOOKMAKER] if bookmaker_agent else list(names)
        self.agents: list[str] = []
        self.model_noise = dict(zip(names, noise, strict=True))
        size = functional.observation_size(self.params)
        self._observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (size,), np.float32)
        self._action_space = gym.spaces.Box(-1.0, 1.0, (m * 5,), np.float32)
        self._observation_spaces = {name: self._observation_space for name in names}
        self._action_spaces = {name: self._action_space for name in names}
        self.observation_names = functional.observation_names(self.params)
        self.bookmaker: BookmakerAgentParams | None = None
        self.bookmaker_observation_names: list[str] = []
        if bookmaker_agent:
            bankroll = (
                DEFAULT_BOOKMAKER_BANKROLL_PER_MATCH * m
                if bookmaker_bankroll is None
                else float(bookmaker_bankroll)
            )
            for name, value, low in (
                ("bookmaker_bankroll", bankroll, 0.0),
                ("bookmaker_margin_range", bookmaker_margin_range, 1.0),
                ("bookmaker_max_skew", bookmaker_max_skew, 0.0),
            ):
                if not (np.isfinite(value) and value > low):
                    raise ValueError(f"{name}: expected a finite value > {low}, got {value!r}")
            if bookmaker_margin_range > 10.0 or bookmaker_max_skew > 3.0:
                raise ValueError(
                    "bookmaker_margin_range ≤ 10 and bookmaker_max_skew ≤ 3 expected, got "
                    f"{bookmaker_margin_range!r} and {bookmaker_max_skew!r}"
                )
            self.bookmaker = BookmakerAgentParams(
                bankroll=jnp.float32(bankroll),
                margin_range=jnp.float32(bookmaker_margin_range),
                max_skew=jnp.float32(bookmaker_max_skew),
            )
            book_size = m * len(BOOKMAKER_MATCH_COLUMNS) + len(BOOKMAKER_GLOBAL_COLUMNS)
            self._observation_spaces[BOOKMAKER] = gym.spaces.Box(
                -OBS_BOUND, OBS_BOUND, (book_size,), np.float32
            )
            self._action_spaces[BOOKMAKER] = gym.spaces.Box(-1.0, 1.0, (m * 2,), np.float32)
            self.bookmaker_observation_names = [
                *(f"m{i}_{c}" for i in range(m) for c in BOOKMAKER_MATCH_COLUMNS),
                *BOOKMAKER_GLOBAL_COLUMNS,
            ]
        self._noise = jnp.asarray(noise, jnp.float32)
        self._key = jax.random.PRNGKey(0)
        self._states: list[EnvState] | None = None
        self._flows: list[RingBuffer] | None = None

    def observation_space(self, agent: str) -> gym.spaces.Box:
        return self._observation_spaces[agent]

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
        obs = {a: np.asarray(observations[i]) for i, a in enumerate(self.bettors)}
        if self.bookmaker is not None:
            obs[BOOKMAKER] = np.asarray(
                _BOOK_OBS(self._states[0].market, self.params, self.bookmaker)
            )
        return obs, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if self._states is None or not self.agents:
            raise RuntimeError("call reset() before step() (the episode is over)")
        unknown = sorted(set(actions) - set(self.agents))
        if unknown:
            raise ValueError(f"actions: unknown agents {unknown}; live agents: {self.agents}")
        stacked = [self._action(name, actions) for name in self.bettors]
        book_action = None
        if self.bookmaker is not None:
            book_action = jnp.asarray(self._action(BOOKMAKER, actions))
        self._key, key = jax.random.split(self._key)
        observations, self._states, self._flows, rewards, done, info, book = _STEP(
            key,
            self._states,
            self._flows,
            jnp.asarray(np.stack(stacked)),
            self.params,
            book_action,
            self.bookmaker,
        )
        done = bool(done)
        obs, rew, term, trunc, infos = {}, {}, {}, {}, {}
        for i, name in enumerate(self.bettors):
            if name not in self.agents:
                continue
            obs[name] = np.asarray(observations[i])
            rew[name] = float(rewards[i])
            infos[name] = {key: np.asarray(value[i]) for key, value in info.items()}
        if book is not None and BOOKMAKER in self.agents:
            obs[BOOKMAKER] = np.asarray(book["observation"])
            rew[BOOKMAKER] = float(book["reward"])
            infos[BOOKMAKER] = {key: np.asarray(value) for key, value in book["info"].items()}
        for name in obs:
            term[name] = done
            trunc[name] = False
        if done:
            self.agents = []
        return obs, rew, term, trunc, infos

    def _action(self, name: str, actions: dict[str, Any]) -> np.ndarray:
        """The agent's validated action; an agent that sends nothing bets nothing (the
        bookmaker: the regime's margin, no skew)."""
        shape = self._action_spaces[name].shape
        if name not in actions:
            return np.zeros(shape, np.float32)
        try:
            return validate_action(actions[name], shape)
        except ValueError as error:
            raise ValueError(f"actions[{name!r}]: {error}") from None


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
        state = functional.initial_env_state(agent_key, market, agent_params, 0)
        states.append(state)
        observations.append(functional.get_obs(state, params))
        flows.append(signals.ring_init(params.market.gamma_window, (params.market.n_matches,)))
    return jnp.stack(observations), states, flows


def quote_adjustment(action: jax.Array, book: BookmakerAgentParams) -> QuoteAdjustment:
    """The bookmaker's action [M·2] (per match: margin level, home/away skew, in [-1, 1])
    as a ``QuoteAdjustment`` (margin multiplier range^a, skew a × max_skew log-odds)."""
    levels = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0).reshape(-1, 2)
    return QuoteAdjustment(
        margin_multiplier=jnp.exp(levels[:, 0] * jnp.log(book.margin_range)),
        home_away_skew=levels[:, 1] * book.max_skew,
    )


def _market_totals(values: jax.Array) -> jax.Array:
    """Per-market sums [M, 5] of [M, 5] values (1X2 over its 3, O/U over its 2)."""
    one_x_two = jnp.broadcast_to(values[:, :3].sum(-1, keepdims=True), values[:, :3].shape)
    over_under = jnp.broadcast_to(values[:, 3:].sum(-1, keepdims=True), values[:, 3:].shape)
    return jnp.concatenate([one_x_two, over_under], axis=-1)


def book_equity(market: market_lib.MarketState, book: BookmakerAgentParams) -> jax.Array:
    """The bookmaker's equity (currency): bankroll + money taken − liabilities (payouts
    owed on settled matches, payout × p_mkt on open ones)."""
    won = market_lib.outcome_indicators(market.match.score)
    weight = jnp.where(market.settled[:, None], won, market.implied)
    return book.bankroll + market.book_stakes.sum() - (market.book_payout * weight).sum()


def bookmaker_obs(
    market: market_lib.MarketState, params: EnvParams, book: BookmakerAgentParams
) -> jax.Array:
    """The bookmaker's observation (float32), columns ``bookmaker_observation_names``."""
    match = market.match
    inverse = 1.0 / market.odds
    exposure = (_market_totals(market.book_stakes) - market.book_payout) / book.bankroll
    per_match = jnp.concatenate(
        [
            (clock_minute(match) / 90.0)[:, None],
            (market.tick < params.market.pre_match_ticks) * jnp.ones((params.market.n_matches, 1)),
            match.score.astype(jnp.float32),
            match.red_cards.astype(jnp.float32),
            (market.suspended > 0).astype(jnp.float32)[:, None],
            market.settled.astype(jnp.float32)[:, None],
            (market.liquidity / params.market.bookmaker.liquidity_close)[:, None],
            market.implied,
            inverse[:, :3].sum(-1, keepdims=True) - 1.0,
            inverse[:, 3:].sum(-1, keepdims=True) - 1.0,
            market.skew,
            jnp.where(market.settled[:, None], 0.0, exposure),
        ],
        axis=-1,
    )
    progress = market.tick / market_lib.episode_ticks(params.market)
    global_values = jnp.stack([book_equity(market, book) / book.bankroll - 1.0, progress])
    observation = jnp.concatenate([per_match.reshape(-1), global_values]).astype(jnp.float32)
    return jnp.clip(
        jnp.nan_to_num(observation, nan=0.0, posinf=OBS_BOUND, neginf=-OBS_BOUND),
        -OBS_BOUND,
        OBS_BOUND,
    )


def _step(
    key: jax.Array,
    states: list[EnvState],
    flows: list[RingBuffer],
    actions: jax.Array,
    params: EnvParams,
    book_action: jax.Array | None = None,
    book: BookmakerAgentParams | None = None,
) -> tuple[
    jax.Array,
    list[EnvState],
    list[RingBuffer],
    jax.Array,
    jax.Array,
    dict[str, Any],
    dict[str, Any] | None,
]:
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
    adjustment = None
    if book is not None and book_action is not None:
        adjustment = quote_adjustment(book_action, book)
    new_shared, info = market_lib.step(key, pooled, total, params.market, adjustment)
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
        pushed = functional.push_signals(previous, market_i, previous.market)
        flow = signals.ring_push(flows[i], fills[:, 0] - fills[:, 2])
        gamma = jnp.mean(
            signals.market_sensitivity(flow, functional.per_match_windows(new_shared.move_window))
        )
        signal_corr = gamma_signal(pushed.edges.values[:, 0, :], pushed.prob_changes.values)
        mode = signals.update_mode(state.mode, gamma, jnp.mean(signal_corr))
        equity = functional.equity_of(market_i)
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
    book_out = None
    if book is not None and adjustment is not None:
        flow = info.fills + info.crowd_fills
        pnl = book_equity(new_shared, book) - book_equity(shared, book)
        inverse = 1.0 / new_shared.odds
        book_out = {
            "observation": bookmaker_obs(new_shared, params, book),
            "reward": (pnl / book.bankroll).astype(jnp.float32),
            "info": {
                "equity": book_equity(new_shared, book),
                "pnl": pnl,
                "take": (flow * (1.0 - info.executed_odds * shared.implied)).sum(),
                "settled_pnl": info.book_pnl.sum(),
                "flow": flow,
                "executed_odds": info.executed_odds,
                "margin_multiplier": adjustment.margin_multiplier,
                "home_away_skew": adjustment.home_away_skew,
                "overround": jnp.stack(
                    [inverse[:, :3].sum(-1) - 1.0, inverse[:, 3:].sum(-1) - 1.0], axis=-1
                ),
                "minute": info.minute,
            },
        }
    return (
        observations,
        new_states,
        new_flows,
        jnp.stack(rewards).astype(jnp.float32),
        info.done,
        infos,
        book_out,
    )


# Module-level jits: every instance with the same static shapes shares the compilation.
_RESET = jax.jit(_reset)
_STEP = jax.jit(_step)
_BOOK_OBS = jax.jit(bookmaker_obs)

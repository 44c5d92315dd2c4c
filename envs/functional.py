"""The betting environment as pure JAX functions (gymnax-style), for JAX trainers.

    obs, state = reset(key, params)
    obs, state, reward, done, info = step(key, state, action, params)

One environment = one slate of M matches in ``market_sim.market`` (or, with
``season_rounds > 1``, a season of slates with the bankroll carried over). One step =
one market tick: a few pre-match ticks, then every match-minute. Usable under
``jit``/``vmap``/``lax.scan``; ``step_autoreset`` resets finished environments in the
same step (PureJaxRL style).

Action ``[M * 5]`` in [-1, 1], selection-major per match (home, draw, away, over 2.5,
under 2.5): a ≤ 0 means no bet; a > 0 asks for a stake of a × ``per_bet_cap`` of the
bankroll. Every action is projected onto the feasible set of SPEC §5 by
``market_sim.portfolio.project_stakes``: non-negative, per-selection cap (minus what is
already staked there), clusters of correlated selections sharing one cap, total open
exposure ≤ Hard-Cap(N_eff) × bankroll, never above the bookmaker's depth or the cash.
Bankroll B = cash + stakes of open bets.

Reward: the change of log equity (cash + cash-out value of open bets), plus optional
potential-based shaping γΦ(s') − Φ(s) with Φ = ``shaping_weight`` × mean over selections
of max(CAS, 0) · Conf_W · Decay (off by default; potential-based, so the optimal policy
is unchanged; turn off for evaluation).

The agent's model probabilities ("information") are the market's oracle probability
with a persistent per-match logit error of sd ``model_noise`` (the information edge as a
knob), or a user predictor's probabilities passed to ``step`` as ``model_probability``.
``info["oracle_true_probability"]`` is the oracle itself: evaluation may read it,
policies must not.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from market_sim import market as market_lib
from market_sim import portfolio, signals
from market_sim.bookmaker import SELECTION_NAMES, SELECTIONS
from market_sim.market import MarketParams, MarketState
from market_sim.signals import RingBuffer
from market_sim.state import clock_minute

#: Observations are finite and within ±OBS_BOUND (NaN → 0, ±inf → ±OBS_BOUND).
OBS_BOUND = 1e6

#: Pre-match team features, the last per-match columns, shared with the replay of real
#: odds (``envs.replay``): goal strengths (Dixon–Coles log multipliers, 0 = league
#: average; defence higher = concedes more), form over the last ≤ 5 matches (mean points
#: 3/1/0, mean goal difference), head-to-head over the last ≤ 3 meetings at either venue
#: (today's home side's mean points, number of meetings).
PRE_MATCH_FEATURE_NAMES: tuple[str, ...] = (
    "home_attack",
    "home_defence",
    "away_attack",
    "away_defence",
    "home_form_points_last5",
    "away_form_points_last5",
    "home_form_goal_diff_last5",
    "away_form_goal_diff_last5",
    "h2h_home_points_last3",
    "h2h_matches_last3",
)

#: Per-match observation columns (in order), then the global ones.
MATCH_COLUMNS: tuple[str, ...] = (
    "minute",
    "pre_match",
    "score_home",
    "score_away",
    "shots_home",
    "shots_away",
    "shots_on_target_home",
    "shots_on_target_away",
    "corners_home",
    "corners_away",
    "fouls_home",
    "fouls_away",
    "yellow_cards_home",
    "yellow_cards_away",
    "red_cards_home",
    "red_cards_away",
    "momentum_home",
    "momentum_away",
    "suspended",
    "liquidity",
    "momentum_corr",
    "vol_idx",
    "decay",
    *(f"market_probability_{s}" for s in SELECTION_NAMES),
    *(f"overround_{m}" for m in ("1x2", "ou25")),
    *(f"depth_{s}" for s in SELECTION_NAMES),
    *(f"model_probability_{s}" for s in SELECTION_NAMES),
    *(f"vsnr_{s}" for s in SELECTION_NAMES),
    *(f"depth_ratio_{s}" for s in SELECTION_NAMES),
    *(f"conf_w_{s}" for s in SELECTION_NAMES),
    *(f"cas_{s}" for s in SELECTION_NAMES),
    *(f"exposure_{s}" for s in SELECTION_NAMES),
    *PRE_MATCH_FEATURE_NAMES,
)
GLOBAL_COLUMNS: tuple[str, ...] = (
    "bankroll_fraction",
    "drawdown",
    "gamma",
    *(f"mode_{name}" for name in signals.MODE_NAMES),
    "n_eff",
    "lambda",
    "hard_cap",
    "kappa",
    "progress",
)


@struct.dataclass
class EnvParams:
    """Static environment parameters (a pytree; ints marked static)."""

    market: MarketParams
    per_bet_cap: Any = 0.05
    hard_cap_base: Any = 0.3
    hard_cap_k: Any = 5.0
    cluster_threshold: Any = 0.3
    model_noise: Any = 0.15
    depth_reference: Any = 50.0
    vol_reference: Any = 0.02
    kappa_initial: Any = 1.0
    target_cas1: Any = 0.10
    risk_base: Any = 1.0
    mode_multipliers: Any = (1.0, 1.0, 0.8, 0.6)
    recovery_drawdown: Any = 0.05
    shaping_weight: Any = 0.0
    shaping_discount: Any = 0.99
    signal_window: int = struct.field(pytree_node=False, default=10)
    #: Static switch of the potential-based shaping (on when shaping_weight > 0).
    shaping: bool = struct.field(pytree_node=False, default=False)
    season_rounds: int = struct.field(pytree_node=False, default=1)


@struct.dataclass
class EnvState:
    """Market state plus the signal windows and risk state of SPEC §3–5."""

    market: MarketState
    model_error: Any  # [M, 5] persistent logit error of the agent's model
    model_probability: Any  # [M, 5]
    edges: RingBuffer  # [M, 5, W] p_model − p_mkt
    vsnr_history: RingBuffer  # [M, 5, W]
    momentum_diff: RingBuffer  # [M, W]
    prob_changes: RingBuffer  # [M, W]
    log_odds_changes: RingBuffer  # [M, W]
    kappa_history: Any  # [3]
    mode: Any
    decisions: Any
    cas_hits: Any
    equity: Any
    peak_equity: Any
    potential: Any
    round_index: Any
    steps: Any


def _ring(shape: tuple[int, ...], window: int) -> RingBuffer:
    return RingBuffer(
        values=jnp.zeros((*shape, window), jnp.float32),
        count=jnp.zeros(shape, jnp.int32),
        position=jnp.zeros(shape, jnp.int32),
    )


def observation_size(params: EnvParams) -> int:
    return params.market.n_matches * len(MATCH_COLUMNS) + len(GLOBAL_COLUMNS)


def observation_names(params: EnvParams) -> list[str]:
    """Every column of the flat observation, ``m{i}_{column}`` per match then globals."""
    per_match = [
        f"m{i}_{column}" for i in range(params.market.n_matches) for column in MATCH_COLUMNS
    ]
    return [*per_match, *GLOBAL_COLUMNS]


def _model_probability(oracle: Any, error: Any) -> Any:
    """Oracle probabilities tilted by a logit error: softmax per 1X2, sigmoid per O/U."""
    logits = jnp.log(jnp.clip(oracle, 1e-6, 1.0)) + error
    one_x_two = jax.nn.softmax(logits[..., :3], axis=-1)
    over = jax.nn.sigmoid(
        jnp.log(jnp.clip(oracle[..., 3], 1e-6, 1.0))
        - jnp.log(jnp.clip(oracle[..., 4], 1e-6, 1.0))
        + error[..., 3]
    )
    return jnp.concatenate([one_x_two, over[..., None], 1.0 - over[..., None]], axis=-1)


def selection_correlation(probability: Any) -> Any:
    """Outcome correlation R of the 5M selections [5M, 5M] from their probabilities [M, 5].

    Within a match the 1X2 outcomes exclude each other (ρ = −√(p_i p_j / ((1−p_i)(1−p_j))))
    and over/under are complements (ρ = −1); 1X2 and O/U are taken as independent, and so
    are different matches (the slate's shared factor moves goal totals only slightly).
    """
    p = jnp.clip(probability, 1e-4, 1.0 - 1e-4)
    ratio = jnp.sqrt(p / (1.0 - p))  # [M, 5]
    block_1x2 = -ratio[:, :3, None] * ratio[:, None, :3]
    block_1x2 = jnp.where(jnp.eye(3, dtype=bool), 1.0, block_1x2)
    block_ou = jnp.array([[1.0, -1.0], [-1.0, 1.0]])
    m = probability.shape[0]
    block = jnp.zeros((m, SELECTIONS, SELECTIONS))
    block = block.at[:, :3, :3].set(block_1x2)
    block = block.at[:, 3:, 3:].set(jnp.broadcast_to(block_ou, (m, 2, 2)))
    eye_m = jnp.eye(m)
    full = eye_m[:, None, :, None] * block[:, :, None, :]  # [M, 5, M, 5]
    return full.reshape(m * SELECTIONS, m * SELECTIONS)


def _signals(state: EnvState, params: EnvParams) -> dict[str, Any]:
    """SPEC §3 signals per match/selection from the state's windows."""
    market = state.market
    minute = jnp.where(
        market.tick < params.market.pre_match_ticks,
        0.0,
        clock_minute(market.match),
    )
    vsnr = signals.vsnr(state.edges)
    sigma = signals.vsnr_sigma(state.vsnr_history)
    momentum_corr = signals.momentum_corr(state.momentum_diff, state.prob_changes)
    vol_idx = signals.vol_idx(state.log_odds_changes, params.vol_reference)
    depth_ratio = signals.depth_ratio(market.depth, params.depth_reference)
    kappa = jnp.median(state.kappa_history)
    conf_w = signals.confidence_weight(momentum_corr[:, None], vol_idx[:, None], depth_ratio, kappa)
    decay = signals.time_decay(minute)
    corridor = signals.corridor_liq(sigma, market.liquidity[:, None], params.depth_reference)
    cas = signals.critical_action_signal(vsnr, decay[:, None], conf_w, corridor)
    return {
        "minute": minute,
        "vsnr": vsnr,
        "momentum_corr": momentum_corr,
        "vol_idx": vol_idx,
        "depth_ratio": depth_ratio,
        "conf_w": conf_w,
        "decay": decay,
        "cas": cas,
        "kappa": kappa,
    }


def _risk(state: EnvState, params: EnvParams, proposed: Any) -> dict[str, Any]:
    """N_eff, λ and Hard-Cap for the open bets plus a proposal [M, 5] (currency)."""
    weights = (state.market.our_stakes + proposed).reshape(-1)
    corr = selection_correlation(state.market.implied)
    n_eff = portfolio.effective_bets(weights, corr)
    avg_corr = portfolio.average_correlation(corr, weights)
    mode_mult = jnp.asarray(params.mode_multipliers, jnp.float32)[state.mode]
    lam = portfolio.risk_multiplier(params.risk_base, mode_mult, avg_corr)
    cap = portfolio.hard_cap(params.hard_cap_base, n_eff, params.hard_cap_k)
    return {"n_eff": n_eff, "lambda": lam, "hard_cap": cap, "corr": corr}


def _per_match(buffer: RingBuffer) -> RingBuffer:
    """The market's [M, W] windows share one count/position; give each match its own."""
    shape = buffer.values.shape[:-1]
    return RingBuffer(
        values=buffer.values,
        count=jnp.broadcast_to(buffer.count, shape),
        position=jnp.broadcast_to(buffer.position, shape),
    )


def market_gamma(market: MarketState) -> Any:
    """γ per match [M] from the market's windows of our flow and p_mkt moves (SPEC §4)."""
    return signals.market_sensitivity(
        _per_match(market.our_flow_window), _per_match(market.move_window)
    )


def _bankroll(market: MarketState) -> Any:
    return market.cash + market.our_stakes.sum()


def _equity(market: MarketState) -> Any:
    return market.cash + market_lib.cash_out_value(market.our_payout, market.odds).sum()


def _expected_form(attack: Any, defence: Any, intercept: Any) -> tuple[Any, Any]:
    """Expected points and goal difference per match against a league-average opponent.

    The simulator has no match history within a slate, so "form" is the team's expected
    form from its strengths (independent Poisson goals on a 0..9 grid); the replay uses
    the real last five results.
    """
    scored = jnp.exp(intercept + attack)
    conceded = jnp.exp(intercept + defence)
    goals = jnp.arange(10.0)
    log_factorial = jax.scipy.special.gammaln(goals + 1.0)

    def pmf(rate: Any) -> Any:
        return jnp.exp(goals * jnp.log(rate[..., None]) - rate[..., None] - log_factorial)

    grid = pmf(scored)[..., :, None] * pmf(conceded)[..., None, :]
    win = jnp.sum(jnp.tril(grid, -1), axis=(-2, -1))
    draw = jnp.sum(jnp.diagonal(grid, axis1=-2, axis2=-1), axis=-1)
    return 3.0 * win + draw, scored - conceded


def pre_match_features(market: MarketState, params: EnvParams) -> Any:
    """The pre-match team features of ``MATCH_COLUMNS`` for the slate [M, 10].

    Strengths are the league model's goal strengths of the two teams (what a
    well-fitted model knows; the structural-break regime's hidden shift is not shown);
    form is expected form from those strengths (see ``_expected_form``); head-to-head is
    0 with 0 meetings (a single simulated slate has no history).
    """
    league = params.market.league
    attack = league.for_strength[0]
    defence = league.against_strength[0]
    intercept = league.intercept[0]
    home, away = market.home, market.away
    home_points, home_difference = _expected_form(attack[home], defence[home], intercept)
    away_points, away_difference = _expected_form(attack[away], defence[away], intercept)
    zeros = jnp.zeros_like(home_points)
    return jnp.stack(
        [
            attack[home],
            defence[home],
            attack[away],
            defence[away],
            home_points,
            away_points,
            home_difference,
            away_difference,
            zeros,
            zeros,
        ],
        axis=-1,
    )


def get_obs(state: EnvState, params: EnvParams) -> jax.Array:
    """Flat observation [observation_size] (float32), columns ``observation_names``."""
    market = state.market
    match = market.match
    sig = _signals(state, params)
    bankroll = jnp.maximum(_bankroll(market), 1e-6)
    risk = _risk(state, params, jnp.zeros_like(market.our_stakes))
    counts = [
        match.score,
        match.shots,
        match.shots_on_target,
        match.corners,
        match.fouls,
        match.yellow_cards,
        match.red_cards,
    ]
    inverse = 1.0 / market.odds
    per_match = jnp.concatenate(
        [
            (sig["minute"] / 90.0)[:, None],
            (market.tick < params.market.pre_match_ticks) * jnp.ones((params.market.n_matches, 1)),
            *[c.astype(jnp.float32) for c in counts],
            match.momentum,
            (market.suspended > 0).astype(jnp.float32)[:, None],
            (market.liquidity / params.depth_reference)[:, None],
            sig["momentum_corr"][:, None],
            sig["vol_idx"][:, None],
            sig["decay"][:, None],
            market.implied,
            inverse[:, :3].sum(-1, keepdims=True) - 1.0,
            inverse[:, 3:].sum(-1, keepdims=True) - 1.0,
            market.depth / bankroll,
            state.model_probability,
            jnp.clip(sig["vsnr"], -10.0, 10.0),
            sig["depth_ratio"],
            sig["conf_w"],
            jnp.clip(sig["cas"], -10.0, 10.0),
            market.our_stakes / bankroll,
            pre_match_features(market, params),
        ],
        axis=-1,
    )
    gamma = market_gamma(market)
    equity = _equity(market)
    global_values = jnp.concatenate(
        [
            jnp.stack(
                [
                    equity / params.market.bankroll,
                    1.0 - equity / jnp.maximum(state.peak_equity, 1e-6),
                    jnp.mean(gamma),
                ]
            ),
            jax.nn.one_hot(state.mode, len(signals.MODE_NAMES)),
            jnp.stack(
                [
                    risk["n_eff"],
                    risk["lambda"],
                    risk["hard_cap"],
                    sig["kappa"],
                    (state.round_index + market.tick / market_lib.episode_ticks(params.market))
                    / params.season_rounds,
                ]
            ),
        ]
    )
    observation = jnp.concatenate([per_match.reshape(-1), global_values]).astype(jnp.float32)
    return jnp.clip(
        jnp.nan_to_num(observation, nan=0.0, posinf=OBS_BOUND, neginf=-OBS_BOUND),
        -OBS_BOUND,
        OBS_BOUND,
    )


def _env_state(
    key: jax.Array, market: MarketState, params: EnvParams, round_index: Any
) -> EnvState:
    m = params.market.n_matches
    error = params.model_noise * jax.random.normal(key, (m, SELECTIONS))
    window = params.signal_window
    equity = _equity(market)
    return EnvState(
        market=market,
        model_error=error,
        model_probability=_model_probability(market.true_probability, error),
        edges=_ring((m, SELECTIONS), window),
        vsnr_history=_ring((m, SELECTIONS), window),
        momentum_diff=_ring((m,), window),
        prob_changes=_ring((m,), window),
        log_odds_changes=_ring((m,), window),
        kappa_history=jnp.full((3,), params.kappa_initial, jnp.float32),
        mode=jnp.int32(signals.NEUTRAL),
        decisions=jnp.float32(0.0),
        cas_hits=jnp.float32(0.0),
        equity=equity,
        peak_equity=equity,
        potential=jnp.float32(0.0),
        round_index=jnp.int32(round_index),
        steps=jnp.int32(0),
    )


def reset(key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
    """A new episode: a fresh slate (round 0) with the starting bankroll."""
    key_market, key_model = jax.random.split(key)
    market = market_lib.reset(key_market, params.market)
    state = _env_state(key_model, market, params, 0)
    return get_obs(state, params), state


def action_to_stakes(action: Any, state: EnvState, params: EnvParams) -> tuple[Any, Any]:
    """Project an action [M*5] onto the feasible set; returns (stakes [M, 5], proposed)."""
    market = state.market
    m = params.market.n_matches
    bankroll = jnp.maximum(_bankroll(market), 0.0)
    fraction = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0).reshape(m, SELECTIONS)
    proposed = jnp.maximum(fraction, 0.0) * params.per_bet_cap * bankroll
    risk = _risk(state, params, proposed)
    open_stakes = market.our_stakes.reshape(-1)
    safe_bankroll = jnp.maximum(bankroll, 1e-6)
    per_bet = jnp.maximum(params.per_bet_cap - open_stakes / safe_bankroll, 0.0)
    total_cap = jnp.maximum(risk["hard_cap"] - open_stakes.sum() / safe_bankroll, 0.0)
    clusters = portfolio.correlation_clusters(risk["corr"], params.cluster_threshold)
    # Closed books (suspended or finished) take nothing: depth 0 there.
    depth = market.depth.reshape(-1)
    stakes = portfolio.project_stakes(
        proposed.reshape(-1), safe_bankroll, per_bet, total_cap, clusters, depth
    )
    stakes = jnp.minimum(stakes, market.cash * stakes / jnp.maximum(stakes.sum(), 1e-9))
    return stakes.reshape(m, SELECTIONS), proposed


def _potential(state: EnvState, params: EnvParams) -> Any:
    sig = _signals(state, params)
    exposure = state.market.our_stakes / jnp.maximum(_bankroll(state.market), 1e-6)
    score = jnp.maximum(sig["cas"], 0.0) * sig["conf_w"] * sig["decay"][:, None]
    return params.shaping_weight * jnp.mean(jnp.clip(score, 0.0, 10.0) * (1.0 + exposure))


def _push_signals(
    state: EnvState, market: MarketState, previous: MarketState, override: Any | None = None
) -> EnvState:
    model_probability = (
        _model_probability(market.true_probability, state.model_error)
        if override is None
        else jnp.asarray(override, jnp.float32)
    )
    edges = signals.ring_push(state.edges, model_probability - market.implied)
    vsnr_history = signals.ring_push(state.vsnr_history, signals.vsnr(edges))
    pressure = (market.match.shots_on_target + market.match.corners).astype(jnp.float32)
    old_pressure = (previous.match.shots_on_target + previous.match.corners).astype(jnp.float32)
    change = pressure - old_pressure
    momentum_diff = signals.ring_push(state.momentum_diff, change[:, 0] - change[:, 1])
    prob_changes = signals.ring_push(
        state.prob_changes, market.implied[:, 0] - previous.implied[:, 0]
    )
    log_odds = jnp.log(market.odds[:, 0]) - jnp.log(previous.odds[:, 0])
    log_odds_changes = signals.ring_push(state.log_odds_changes, log_odds)
    return dataclasses.replace(
        state,
        market=market,
        model_probability=model_probability,
        edges=edges,
        vsnr_history=vsnr_history,
        momentum_diff=momentum_diff,
        prob_changes=prob_changes,
        log_odds_changes=log_odds_changes,
    )


def bet_types(state: EnvState, fills: Any, params: EnvParams) -> Any:
    """SPEC §9 type per filled selection [M, 5]: 0 none, 1 value, 2 hunting, 3 recovery.

    recovery: placed while equity is ``recovery_drawdown`` below its peak (still inside
    every cap, unlike a martingale); value: the model probability beats the price
    (p_model × odds > 1); hunting: the rest (taking a price expected to shorten).
    """
    drawdown = 1.0 - state.equity / jnp.maximum(state.peak_equity, 1e-6)
    value = state.model_probability * state.market.odds > 1.0
    kind = jnp.where(drawdown > params.recovery_drawdown, 3, jnp.where(value, 1, 2))
    return jnp.where(fills > 0, kind, 0).astype(jnp.int32)


def step(
    key: jax.Array,
    state: EnvState,
    action: Any,
    params: EnvParams,
    model_probability: Any | None = None,
) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
    """One tick: project the action, trade, play, settle; reward = Δ log equity (+ shaping).

    ``model_probability`` [M, 5] (optional): the agent's own model (a trained predictor)
    replaces the oracle-plus-noise information for this tick and in the signal windows.
    """
    if model_probability is not None:
        state = dataclasses.replace(state, model_probability=jnp.asarray(model_probability))
    key_market, key_next, key_model = jax.random.split(key, 3)
    stakes, proposed = action_to_stakes(action, state, params)
    types = bet_types(state, stakes, params)
    previous = state.market
    market, info = market_lib.step(key_market, previous, stakes, params.market)
    sig_before = _signals(state, params)
    state = _push_signals(state, market, previous, model_probability)
    open_book = (market.suspended == 0) & ~market.settled
    decisions = state.decisions + open_book.sum() * SELECTIONS
    cas_hits = state.cas_hits + ((sig_before["cas"] >= 1.0) & open_book[:, None]).sum()
    gamma = jnp.mean(market_gamma(market))
    signal_corr = signals.momentum_corr(state.edges.values[:, 0, :], state.prob_changes.values)
    mode = signals.update_mode(state.mode, gamma, jnp.mean(signal_corr))

    slate_done = info.done
    more_rounds = state.round_index + 1 < params.season_rounds
    # κ calibration after each slate (the evaluation window).
    realized = cas_hits / jnp.maximum(decisions, 1.0)
    new_kappa, new_history = signals.calibrate_kappa(
        state.kappa_history, params.target_cas1, realized
    )
    del new_kappa
    kappa_history = jnp.where(slate_done, new_history, state.kappa_history)

    equity = _equity(market)
    reward = jnp.log(jnp.maximum(equity, 1e-6)) - jnp.log(jnp.maximum(state.equity, 1e-6))
    state = dataclasses.replace(
        state,
        kappa_history=kappa_history,
        mode=mode,
        decisions=jnp.where(slate_done, 0.0, decisions),
        cas_hits=jnp.where(slate_done, 0.0, cas_hits),
        equity=equity,
        peak_equity=jnp.maximum(state.peak_equity, equity),
        steps=state.steps + 1,
    )
    if params.season_rounds > 1:  # static: season mode only
        # The next slate starts with the cash carried over.
        next_market = market_lib.next_round(key_next, market, params.market)
        continue_season = slate_done & more_rounds
        rolled = _env_state(key_model, next_market, params, state.round_index + 1)
        rolled = dataclasses.replace(
            rolled,
            kappa_history=state.kappa_history,
            mode=state.mode,
            equity=state.equity,
            peak_equity=state.peak_equity,
            steps=state.steps,
        )
        state = jax.tree.map(lambda new, old: jnp.where(continue_season, new, old), rolled, state)
    bankrupt = equity < 1e-3 * params.market.bankroll
    done = (slate_done & ~more_rounds) | bankrupt

    shaping = jnp.float32(0.0)
    if params.shaping:  # static: the potential costs a second pass over the signals
        new_potential = _potential(state, params)
        shaping = params.shaping_discount * jnp.where(done, 0.0, new_potential) - state.potential
        state = dataclasses.replace(state, potential=new_potential)
    requested_total = proposed.sum()
    info_out = {
        "executed_stakes": info.fills,
        "projected_stakes": stakes,
        "proposed_stakes": proposed,
        "projection_distance": jnp.linalg.norm((proposed - stakes).reshape(-1)),
        "requested_total": requested_total,
        "executed_odds": info.executed_odds,
        "equity": equity,
        "cash": market.cash,
        "drawdown": 1.0 - equity / jnp.maximum(state.peak_equity, 1e-6),
        "gamma": gamma,
        "mode": mode,
        "settled_pnl": info.settled_pnl.sum(),
        "bet_types": types,
        "market_probability": info.market_probability,
        "closing_odds": market.closing_odds,
        "minute": info.minute,
        "cas": sig_before["cas"],
        "oracle_true_probability": info.true_probability,
        "round_index": state.round_index,
    }
    obs = get_obs(state, params)
    return obs, state, (reward + shaping).astype(jnp.float32), done, info_out


def step_autoreset(
    key: jax.Array, state: EnvState, action: Any, params: EnvParams
) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
    """``step`` that resets a finished environment in the same call (same-step autoreset).

    The returned observation is the new episode's first one when ``done``; the final
    observation of the finished episode is ``info["final_observation"]``.
    """
    key_step, key_reset = jax.random.split(key)
    obs, new_state, reward, done, info = step(key_step, state, action, params)
    reset_obs, reset_state = reset(key_reset, params)
    info["final_observation"] = obs
    state_out = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, new_state)
    obs_out = jnp.where(done, reset_obs, obs)
    return obs_out, state_out, reward, done, info

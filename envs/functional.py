"""The betting environment as pure JAX functions (gymnax-style), for JAX trainers.

    obs, state = reset(key, params)
    obs, state, reward, done, info = step(key, state, action, params)

One environment = one slate of M matches in ``market_sim.market`` (or, with
``season_rounds > 1``, a season of slates with the bankroll carried over). One step =
one market tick: a few pre-match ticks, then every match-minute. Usable under
``jit``/``vmap``/``lax.scan``; ``step_autoreset`` resets finished environments in the
same step (PureJaxRL style); for a batch of environments under ``jit``/``scan`` use
``step_autoreset_batch(key, states, actions, params)``, which vmaps ``step`` and resets
(``reset_where``) only on ticks where some environment finished.

Cost: the SPEC §3 signals are computed once per tick (the CAS that the next step needs
is cached in ``EnvState.cas``, the constant pre-match features in ``EnvState.pre_match``);
the risk block (N_eff, λ, clusters, projection) works on the per-match 5×5 correlation
blocks (``correlation_blocks``), equal to ``market_sim.portfolio``'s dense functions on
``selection_correlation`` up to rounding.

Action ``[M * 5]`` in [-1, 1], selection-major per match (home, draw, away, over 2.5,
under 2.5): a ≤ 0 means no bet; a > 0 asks for a stake of a × ``per_bet_cap`` of the
bankroll (``target_actions=True``: a > 0 asks for an open exposure of a × ``per_bet_cap``
of the bankroll on that selection, i.e. a new stake of the difference to what is already
open there; holding an action holds the exposure instead of adding to it). Every action
is projected onto the feasible set of SPEC §5 by
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
knob; ``model_source="market"``: the market's own de-margined probability with that
error, i.e. no information beyond the price), or a user predictor's probabilities passed
to ``step`` as ``model_probability``.
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
#: Upper clip of the ``expected_return`` columns (a 10-fold return is already an outlier).
EXPECTED_RETURN_BOUND = 10.0

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
    *(f"expected_return_{s}" for s in SELECTION_NAMES),
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
    #: Actions ask for a target open exposure per selection instead of a new stake.
    target_actions: bool = struct.field(pytree_node=False, default=False)
    #: What the agent's model tilts: "oracle" (true probability) or "market" (p_mkt).
    model_source: str = struct.field(pytree_node=False, default="oracle")


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
    pre_match: Any  # [M, 10] ``pre_match_features`` of the slate (constant within it)
    cas: Any  # [M, 5] CAS of this state's signals (set by reset/step; next step's cas_hits)


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


def correlation_blocks(probability: Any) -> Any:
    """The per-match blocks [M, 5, 5] of ``selection_correlation`` (the rest is zero)."""
    p = jnp.clip(probability, 1e-4, 1.0 - 1e-4)
    ratio = jnp.sqrt(p / (1.0 - p))  # [M, 5]
    block_1x2 = -ratio[:, :3, None] * ratio[:, None, :3]
    block_1x2 = jnp.where(jnp.eye(3, dtype=bool), 1.0, block_1x2)
    block_ou = jnp.array([[1.0, -1.0], [-1.0, 1.0]])
    m = probability.shape[0]
    zeros = jnp.zeros((m, 3, 2), block_1x2.dtype)
    top = jnp.concatenate([block_1x2, zeros], axis=-1)
    bottom = jnp.concatenate(
        [jnp.swapaxes(zeros, -1, -2), jnp.broadcast_to(block_ou, (m, 2, 2))], axis=-1
    )
    return jnp.concatenate([top, bottom], axis=-2)


def selection_correlation(probability: Any) -> Any:
    """Outcome correlation R of the 5M selections [5M, 5M] from their probabilities [M, 5].

    Within a match the 1X2 outcomes exclude each other (ρ = −√(p_i p_j / ((1−p_i)(1−p_j))))
    and over/under are complements (ρ = −1); 1X2 and O/U are taken as independent, and so
    are different matches (the slate's shared factor moves goal totals only slightly).
    R is block-diagonal (``correlation_blocks``); the environment works on the blocks
    (``block_effective_bets`` and friends), this dense form is for reference and tests.
    """
    block = correlation_blocks(probability)
    m = probability.shape[0]
    eye_m = jnp.eye(m)
    full = eye_m[:, None, :, None] * block[:, :, None, :]  # [M, 5, M, 5]
    return full.reshape(m * SELECTIONS, m * SELECTIONS)


# ------------------------------------------------- risk block on the per-match blocks
# The selections' correlation is block-diagonal (one 5×5 block per match, 0 across
# matches), so N_eff, the average correlation, the clusters and the projection are
# computed per block: equal (up to float rounding) to ``market_sim.portfolio``'s dense
# functions on ``selection_correlation``, at a fraction of the cost.


def block_effective_bets(weights: Any, blocks: Any) -> Any:
    """``portfolio.effective_bets`` for block-diagonal R. weights [M, 5], blocks [M, 5, 5]."""
    w = jnp.maximum(weights, 0.0)
    total = jnp.sum(w)
    w = w / jnp.where(total > 0.0, total, 1.0)
    concentration = jnp.sum(w[:, :, None] * blocks * w[:, None, :])
    open_bets = jnp.maximum(jnp.sum(w > 0.0), 1).astype(w.dtype)
    n_eff = 1.0 / jnp.maximum(concentration, 1.0 / open_bets)
    return jnp.where(total > 0.0, jnp.clip(n_eff, 1.0, open_bets), 1.0)


def block_average_correlation(blocks: Any, weights: Any) -> Any:
    """``portfolio.average_correlation(R, weights)`` for block-diagonal R [M, 5, 5].

    Pairs across matches count with correlation 0.
    """
    open_bets = weights > 0.0
    size = blocks.shape[-1]
    pairs = open_bets[:, :, None] & open_bets[:, None, :] & ~jnp.eye(size, dtype=bool)
    n_open = jnp.sum(open_bets)
    number = n_open * (n_open - 1)
    total = jnp.sum(jnp.where(pairs, blocks, 0.0))
    return jnp.where(number > 0, total / jnp.maximum(number, 1), 0.0)


def block_clusters(blocks: Any, threshold: Any) -> tuple[Any, Any]:
    """``portfolio.correlation_clusters`` for block-diagonal R: (labels [5M], same [M, 5, 5]).

    ``same[m, i, j]``: selections i and j of match m are in one cluster. Entries across
    matches are 0, which links them only when ``threshold < 0``; then (M ≥ 2) the whole
    slate is one cluster, label 0 (``same`` still holds the per-match part).
    """
    m, size = blocks.shape[0], blocks.shape[-1]
    reach = (blocks > threshold) | jnp.eye(size, dtype=bool)
    for _ in range(max(size - 1, 1).bit_length()):  # paths of ≤ 2^k ≥ size − 1 links
        reach = jnp.any(reach[:, :, :, None] & reach[:, None, :, :], axis=2)
    local = jnp.argmax(reach, axis=-1).astype(jnp.int32)  # smallest member (diagonal set)
    labels = (jnp.arange(m, dtype=jnp.int32)[:, None] * size + local).reshape(-1)
    if m > 1:
        labels = jnp.where(threshold < 0.0, 0, labels)
    return labels, reach


def _level(points: Any, excess: Any) -> Any:
    """Smallest θ ≥ 0 with excess(θ) ≤ 0, for a non-increasing piecewise-linear excess.

    ``points`` [..., K] hold every kink of the excess in [0, θ*], 0 and one point with
    excess ≤ 0; ``excess`` [..., K] its values there. The root lies between the last
    point with excess > 0 and the first with excess ≤ 0, where the excess is linear:
    exact up to rounding (what ``portfolio.project_stakes`` reaches by bisection).
    """
    above = excess > 0.0
    low = jnp.max(jnp.where(above, points, 0.0), axis=-1)
    high = jnp.min(jnp.where(above, jnp.inf, points), axis=-1)
    excess_low = jnp.min(jnp.where(above, excess, jnp.inf), axis=-1)
    excess_high = jnp.max(jnp.where(above, -jnp.inf, excess), axis=-1)
    slope = jnp.maximum(excess_low - excess_high, 1e-30)
    root = low + excess_low * (high - low) / slope
    return jnp.where(jnp.any(above, axis=-1), jnp.minimum(root, high), 0.0)


def _search_level(excess: Any, high: Any, ways: int = 8, rounds: int = 20) -> Any:
    """Smallest θ ∈ [0, high] with excess(θ) ≤ 0 for a non-increasing excess (scalar θ).

    ``ways``-ary search: each round evaluates ``excess`` (points [K] → [K]) at ``ways``
    points of the bracket; 8²⁰ = 2⁶⁰, the resolution of ``portfolio``'s 60 bisection
    steps, in a third of the sequential rounds. Ends on the feasible side (excess ≤ 0),
    exactly 0 when nothing binds.
    """
    fractions = jnp.arange(1, ways + 1, dtype=jnp.float32) / ways

    def body(_: int, bracket: tuple[Any, Any]) -> tuple[Any, Any]:
        low, top = bracket
        points = low + (top - low) * fractions
        above = excess(points) > 0.0
        return jnp.max(jnp.where(above, points, low)), jnp.min(jnp.where(above, top, points))

    low = jnp.zeros_like(high)
    _, top = jax.lax.fori_loop(0, rounds, body, (low, high))
    return jnp.where(excess(low[None])[0] > 0.0, top, low)


def block_project_stakes(
    stakes: Any,
    bankroll: Any,
    per_bet_cap: Any,
    hard_cap: Any,
    same: Any | None,
    depth: Any,
    whole_slate: Any = False,
) -> Any:
    """``portfolio.project_stakes`` with clusters inside matches. Arrays [M, 5] (currency).

    ``same`` [M, 5, 5] from ``block_clusters`` (``None``: every selection is its own
    cluster, whose cap is then never binding); ``whole_slate`` (bool): one cluster over
    every selection instead (``block_clusters`` with a negative threshold, M ≥ 2).
    Cluster caps are the default (largest per-bet cap in the cluster). The same solution
    x = clip(y − max(ν, θ_c), 0, u) as the dense function, its levels θ_c and ν solved
    from the kinks of the piecewise-linear excess (θ_c, exact) and by an 8-way search to
    the bisection's resolution (ν), so equal up to float rounding.
    """
    proposal = stakes
    bet_cap = jnp.broadcast_to(per_bet_cap, proposal.shape)
    upper = jnp.maximum(jnp.minimum(bet_cap * bankroll, depth), 0.0)
    total_limit = jnp.maximum(jnp.minimum(hard_cap, 1.0) * bankroll, 0.0)
    high = jnp.maximum(jnp.max(proposal), 0.0)
    kinks = jnp.clip(jnp.stack([proposal, proposal - upper], axis=-1), 0.0, high)  # [M, 5, 2]

    def shifted(level: Any) -> Any:
        return jnp.clip(proposal - level, 0.0, upper)

    if same is None:
        cluster_level = jnp.zeros_like(proposal)
    else:

        def block_levels() -> Any:
            # Per selection i: Σ_{j ∈ cluster(i)} clip(y_j − θ, 0, u_j) − cap_i · B at the
            # kinks of its match (0 and the y_j, y_j − u_j of the block).
            caps = jnp.max(jnp.where(same, bet_cap[:, None, :], -jnp.inf), axis=-1)
            limit = jnp.maximum(caps * bankroll, 0.0)
            points = jnp.concatenate(
                [jnp.zeros((proposal.shape[0], 1)), kinks.reshape(proposal.shape[0], -1)], -1
            )  # [M, K]
            values = jnp.clip(
                proposal[:, None, :] - points[:, :, None], 0.0, upper[:, None, :]
            )  # [M, K, 5]
            sums = jnp.einsum("mij,mkj->mik", same.astype(values.dtype), values)
            return _level(jnp.broadcast_to(points[:, None, :], sums.shape), sums - limit[..., None])

        def slate_level() -> Any:
            limit = jnp.maximum(jnp.max(bet_cap) * bankroll, 0.0)
            points = jnp.concatenate([jnp.zeros((1,)), kinks.reshape(-1)])
            flat = jnp.clip(proposal.reshape(-1) - points[:, None], 0.0, upper.reshape(-1))
            sums = jnp.sum(flat, axis=-1)
            return jnp.full(proposal.shape, _level(points, sums - limit))

        cluster_level = jax.lax.cond(whole_slate, slate_level, block_levels)

    # Total level ν: a search on the bracket [0, high] (as the dense bisection; an exact
    # kink solve over all 5M selections costs more than it saves).
    flat_proposal, flat_upper = proposal.reshape(-1), upper.reshape(-1)
    flat_cluster = cluster_level.reshape(-1)

    def total_excess(levels: Any) -> Any:  # [K] → [K]; flat [K, 5M] reduces much faster
        grid = levels[:, None] if same is None else jnp.maximum(levels[:, None], flat_cluster)
        return jnp.sum(jnp.clip(flat_proposal - grid, 0.0, flat_upper), axis=-1) - total_limit

    total_level = _search_level(total_excess, high)
    return shifted(jnp.maximum(total_level, cluster_level))


def _signals(state: EnvState, params: EnvParams) -> dict[str, Any]:
    """SPEC §3 signals per match/selection from the state's windows."""
    market = state.market
    minute = jnp.where(
        market.tick < params.market.pre_match_ticks,
        0.0,
        clock_minute(market.match),
    )
    # ``push_signals`` pushes VSNR(edges) into ``vsnr_history`` with every edge, so its
    # latest entry is the current VSNR (0 while empty, as VSNR of < 2 edges).
    history = state.vsnr_history
    latest = jnp.take_along_axis(
        history.values, ((history.position - 1) % history.window)[..., None], axis=-1
    )[..., 0]
    vsnr = jnp.where(history.count > 0, latest, 0.0)
    sigma = signals.vsnr_sigma(history)
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
    """N_eff, λ and Hard-Cap for the open bets plus a proposal [M, 5] (currency).

    On the per-match correlation blocks (``blocks`` [M, 5, 5]): equal to the dense
    ``portfolio`` functions on ``selection_correlation``.
    """
    weights = state.market.our_stakes + proposed
    blocks = correlation_blocks(state.market.implied)
    n_eff = block_effective_bets(weights, blocks)
    avg_corr = block_average_correlation(blocks, weights)
    mode_mult = jnp.asarray(params.mode_multipliers, jnp.float32)[state.mode]
    lam = portfolio.risk_multiplier(params.risk_base, mode_mult, avg_corr)
    cap = portfolio.hard_cap(params.hard_cap_base, n_eff, params.hard_cap_k)
    return {"n_eff": n_eff, "lambda": lam, "hard_cap": cap, "blocks": blocks}


def per_match_windows(buffer: RingBuffer) -> RingBuffer:
    """The market's [M, W] windows share one count/position; give each match its own."""
    shape = buffer.values.shape[:-1]
    return RingBuffer(
        values=buffer.values,
        count=jnp.broadcast_to(buffer.count, shape),
        position=jnp.broadcast_to(buffer.position, shape),
    )


def market_gamma(market: MarketState, horizon: int = 3) -> Any:
    """γ per match [M] from the market's windows of our flow and p_mkt moves (SPEC §4).

    ``signals.market_sensitivity`` on the windows (``per_match_windows``), computed in slot
    order instead of time order: the correlation does not depend on the order of its
    pairs, and each slot's next ``horizon`` moves are its next slots around the ring
    (static rolls), so no per-environment gather (slow under ``vmap``) is needed.
    """
    flow, moves = market.our_flow_window, market.move_window
    window = flow.values.shape[-1]
    # Time index of each slot (0 = oldest); the two windows are pushed together.
    age = (jnp.arange(window) - flow.position[..., None]) % window
    valid_flow = age >= window - flow.count[..., None]
    age_moves = (jnp.arange(window) - moves.position[..., None]) % window
    valid_moves = age_moves >= window - moves.count[..., None]
    values = jnp.where(valid_moves, moves.values, 0.0)
    future = jnp.roll(values, -1, axis=-1)
    for ahead in range(2, horizon + 1):
        future = future + jnp.roll(values, -ahead, axis=-1)
    valid = valid_flow & valid_moves & (age_moves + horizon <= window - 1)
    valid = jnp.broadcast_to(valid, flow.values.shape)
    return signals._masked_correlation(flow.values, future, valid)


def _bankroll(market: MarketState) -> Any:
    return market.cash + market.our_stakes.sum()


def equity_of(market: MarketState) -> Any:
    """Our equity (currency): cash + cash-out value of the open bets at current odds."""
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
    return _observe(state, params)[0]


def expected_return(probability: Any, odds: Any) -> Any:
    """The model's expected return per unit staked at the quoted odds, p_model × odds − 1
    (a fraction of the stake), clipped to [−1, ``EXPECTED_RETURN_BOUND``].

    Why a column of its own: the SPEC's edge p_model − p_mkt is a difference, but what a
    bet earns is the ratio (an edge of 0.05 is +5% on an even-money selection and +100%
    on a 20-to-1 one); a small network computes that ratio poorly from the two columns.
    """
    return jnp.clip(probability * odds - 1.0, -1.0, EXPECTED_RETURN_BOUND)


def _observe(
    state: EnvState, params: EnvParams, gamma: Any | None = None
) -> tuple[jax.Array, dict[str, Any]]:
    """``get_obs`` and the SPEC §3 signals it was built from (computed once per tick).

    ``gamma``: mean γ of ``state.market`` when the caller has it already.
    """
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
            expected_return(state.model_probability, market.odds),
            jnp.clip(sig["vsnr"], -10.0, 10.0),
            sig["depth_ratio"],
            sig["conf_w"],
            jnp.clip(sig["cas"], -10.0, 10.0),
            market.our_stakes / bankroll,
            state.pre_match,
        ],
        axis=-1,
    )
    gamma = jnp.mean(market_gamma(market)) if gamma is None else gamma
    equity = equity_of(market)
    global_values = jnp.concatenate(
        [
            jnp.stack(
                [
                    equity / params.market.bankroll,
                    1.0 - equity / jnp.maximum(state.peak_equity, 1e-6),
                    gamma,
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
    observation = jnp.clip(
        jnp.nan_to_num(observation, nan=0.0, posinf=OBS_BOUND, neginf=-OBS_BOUND),
        -OBS_BOUND,
        OBS_BOUND,
    )
    return observation, sig


def initial_env_state(
    key: jax.Array, market: MarketState, params: EnvParams, round_index: Any
) -> EnvState:
    """A fresh ``EnvState`` around a market state: a new model error (``key``), empty
    signal windows, equity and peak at the market's equity (used by ``reset``, season
    roll-over and the multi-agent env's per-agent views)."""
    m = params.market.n_matches
    error = params.model_noise * jax.random.normal(key, (m, SELECTIONS))
    window = params.signal_window
    equity = equity_of(market)
    return EnvState(
        market=market,
        model_error=error,
        model_probability=_model_probability(_information_base(market, params.model_source), error),
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
        pre_match=pre_match_features(market, params),
        # A fresh state's windows are empty, so its CAS is 0 (VSNR needs two values).
        cas=jnp.zeros((m, SELECTIONS), jnp.float32),
    )


def reset(key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
    """A new episode: a fresh slate (round 0) with the starting bankroll."""
    key_market, key_model = jax.random.split(key)
    market = market_lib.reset(key_market, params.market)
    state = initial_env_state(key_model, market, params, 0)
    obs, sig = _observe(state, params)
    return obs, dataclasses.replace(state, cas=sig["cas"])


def action_to_stakes(action: Any, state: EnvState, params: EnvParams) -> tuple[Any, Any]:
    """Project an action [M*5] onto the feasible set; returns (stakes [M, 5], proposed)."""
    market = state.market
    m = params.market.n_matches
    bankroll = jnp.maximum(_bankroll(market), 0.0)
    fraction = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0).reshape(m, SELECTIONS)
    proposed = jnp.maximum(fraction, 0.0) * params.per_bet_cap * bankroll
    if params.target_actions:  # static: a target exposure, so ask for the difference
        proposed = jnp.maximum(proposed - market.our_stakes, 0.0)
    risk = _risk(state, params, proposed)
    open_stakes = market.our_stakes.reshape(-1)
    safe_bankroll = jnp.maximum(bankroll, 1e-6)
    per_bet = jnp.maximum(params.per_bet_cap - open_stakes / safe_bankroll, 0.0)
    total_cap = jnp.maximum(risk["hard_cap"] - open_stakes.sum() / safe_bankroll, 0.0)
    # Clusters and projection on the per-match blocks (= portfolio.correlation_clusters and
    # portfolio.project_stakes on the dense correlation, up to rounding). Correlations in
    # a match are ≤ 0 and 0 across, so a threshold ≥ 0 links nothing: all singletons.
    # Closed books (suspended or finished) take nothing: depth 0 there.
    per_bet = per_bet.reshape(m, SELECTIONS)

    def project(clustered: bool) -> Any:
        if not clustered:
            return block_project_stakes(
                proposed, safe_bankroll, per_bet, total_cap, None, market.depth
            )
        _, same = block_clusters(risk["blocks"], params.cluster_threshold)
        whole_slate = (params.cluster_threshold < 0.0) & (m > 1)
        return block_project_stakes(
            proposed, safe_bankroll, per_bet, total_cap, same, market.depth, whole_slate
        )

    stakes = jax.lax.cond(
        params.cluster_threshold >= 0.0, lambda: project(False), lambda: project(True)
    )
    stakes = jnp.minimum(stakes, market.cash * stakes / jnp.maximum(stakes.sum(), 1e-9))
    return stakes, proposed


def _potential(state: EnvState, params: EnvParams, sig: dict[str, Any] | None = None) -> Any:
    sig = _signals(state, params) if sig is None else sig
    exposure = state.market.our_stakes / jnp.maximum(_bankroll(state.market), 1e-6)
    score = jnp.maximum(sig["cas"], 0.0) * sig["conf_w"] * sig["decay"][:, None]
    return params.shaping_weight * jnp.mean(jnp.clip(score, 0.0, 10.0) * (1.0 + exposure))


def _information_base(market: MarketState, model_source: str) -> Any:
    """The probabilities the agent's model tilts: the oracle's or the market's [M, 5]."""
    return market.true_probability if model_source == "oracle" else market.implied


def push_signals(
    state: EnvState,
    market: MarketState,
    previous: MarketState,
    override: Any | None = None,
    model_source: str = "oracle",
) -> EnvState:
    """Advance the state's signal windows by one tick (``previous`` → ``market``): the
    model probabilities (``override`` if given), edges, VSNR, momentum and price changes."""
    model_probability = (
        _model_probability(_information_base(market, model_source), state.model_error)
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
    cas_before = state.cas  # the CAS of the observation the action was chosen on
    state = push_signals(state, market, previous, model_probability, params.model_source)
    open_book = (market.suspended == 0) & ~market.settled
    decisions = state.decisions + open_book.sum() * SELECTIONS
    cas_hits = state.cas_hits + ((cas_before >= 1.0) & open_book[:, None]).sum()
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

    equity = equity_of(market)
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
        rolled = initial_env_state(key_model, next_market, params, state.round_index + 1)
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

    # γ of this market is known unless a new slate of the season replaced it.
    obs, sig = _observe(state, params, gamma if params.season_rounds == 1 else None)
    state = dataclasses.replace(state, cas=sig["cas"])
    shaping = jnp.float32(0.0)
    if params.shaping:  # static
        new_potential = _potential(state, params, sig)
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
        "match_pnl": match_pnl(previous, market, info.fills, info.settled_pnl),
        "bet_types": types,
        "market_probability": info.market_probability,
        "closing_odds": market.closing_odds,
        "minute": info.minute,
        "cas": cas_before,
        "oracle_true_probability": info.true_probability,
        "round_index": state.round_index,
    }
    return obs, state, (reward + shaping).astype(jnp.float32), done, info_out


def match_pnl(previous: MarketState, market: MarketState, fills: Any, settled_pnl: Any) -> Any:
    """Our P&L per match over one tick [M] (currency): change of the cash-out value of the
    match's open bets, minus new stakes, plus payouts received at settlement. Summed over
    matches it is exactly the change of equity (cash + cash-out value): the per-match
    decomposition of the reward that a factored critic can learn from."""
    old_value = market_lib.cash_out_value(previous.our_payout, previous.odds).sum(-1)
    new_value = market_lib.cash_out_value(market.our_payout, market.odds).sum(-1)
    newly_settled = market.settled & ~previous.settled
    received = jnp.where(newly_settled, (settled_pnl + previous.our_stakes + fills).sum(-1), 0.0)
    return new_value - old_value - fills.sum(-1) + received


def reset_where(
    key: jax.Array, state: EnvState, obs: jax.Array, done: Any, params: EnvParams
) -> tuple[jax.Array, EnvState]:
    """(obs, state) with a fresh episode (``reset(key)``) where ``done``, unchanged elsewhere.

    One environment; ``jax.vmap`` it for a batch (keys, states, obs, done batched).
    """
    reset_obs, reset_state = reset(key, params)
    state_out = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, state)
    return jnp.where(done, reset_obs, obs), state_out


def step_autoreset(
    key: jax.Array, state: EnvState, action: Any, params: EnvParams
) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
    """``step`` that resets a finished environment in the same call (same-step autoreset).

    The returned observation is the new episode's first one when ``done``; the final
    observation of the finished episode is ``info["final_observation"]``. The reset sits
    in a ``lax.cond``, so it costs nothing on the ticks that do not finish an episode —
    but under ``jax.vmap`` the cond becomes a select and the reset runs every tick: for a
    batch of environments use ``step_autoreset_batch``, which conditions on the batch.
    """
    key_step, key_reset = jax.random.split(key)
    obs, new_state, reward, done, info = step(key_step, state, action, params)
    info["final_observation"] = obs
    obs_out, state_out = jax.lax.cond(
        done,
        lambda: reset_where(key_reset, new_state, obs, done, params),
        lambda: (obs, new_state),
    )
    return obs_out, state_out, reward, done, info


def step_autoreset_batch(
    key: jax.Array, states: EnvState, actions: Any, params: EnvParams
) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
    """``step_autoreset`` for a batch of N environments, for JAX trainers (jit / scan).

    ``states``: a batched ``EnvState`` (leading axis N, e.g. from
    ``jax.vmap(reset, in_axes=(0, None))``), ``actions`` [N, M·5]; returns batched
    (obs [N, obs], states, reward [N], done [N], info) with ``info["final_observation"]``.
    Steps every environment with ``jax.vmap(step)`` and resets the finished ones inside
    one batch-level ``lax.cond(any(done))``: episodes last a fixed number of ticks (or end
    on bankruptcy), so the reset, dearer than a step, runs only on the ticks where some
    environment finished, instead of on every tick as a vmapped ``step_autoreset`` does.
    The step keys match ``step_autoreset``'s: ``split(key, N)``, then each split in two.
    """
    num_envs = jax.tree.leaves(states)[0].shape[0]
    keys = jax.vmap(jax.random.split)(jax.random.split(key, num_envs))
    obs, new_states, reward, done, info = jax.vmap(step, in_axes=(0, 0, 0, None))(
        keys[:, 0], states, actions, params
    )
    info["final_observation"] = obs
    obs_out, states_out = jax.lax.cond(
        jnp.any(done),
        lambda: jax.vmap(reset_where, in_axes=(0, 0, 0, 0, None))(
            keys[:, 1], new_states, obs, done, params
        ),
        lambda: (obs, new_states),
    )
    return obs_out, states_out, reward, done, info

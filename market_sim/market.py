"""The simulated market of one slate: M matches, a bookmaker, a crowd and our bets.

``reset(key, params) -> MarketState`` draws a slate (M fixtures between distinct teams,
a shared day factor, the bookmaker's belief errors) and quotes the pre-match snapshot;
``step(key, state, stakes, params) -> (state, MarketStepInfo)`` plays one tick. Both are
pure JAX for one slate; batch slates with ``jax.vmap`` (params broadcast).

Ticks. The first ``pre_match_ticks`` steps are pre-match (the match clock stands still;
the bookmaker's news error fades, liquidity ramps up): the quote after ``reset`` is the
**snapshot**, the quote after the last pre-match step the **close** (kept in
``closing_odds`` for CLV and ``price_drift``). Every later step plays one match-minute.
All matches are over after ``pre_match_ticks + MAX_TICKS`` steps (``episode_ticks``).

One step, in order:

1. our ``stakes`` [M, 5] (currency; scaled down together if they exceed the cash) are
   filled at the current odds up to the current depth (the rest is not filled), only
   where the book is open (not suspended, match not over);
2. the crowd's flows (``market_sim.crowd``) are filled at the same odds up to the depth
   left; all money enters the bookmaker's book and moves the liability skew;
3. manipulation shocks (regime schedule) move prices and withdraw depth, with no match
   event behind them;
4. in-play, every match plays a minute (``market_sim.match.step``, with the slate's shared
   factor); a goal or a red card suspends that match's book for a few minutes;
5. the bookmaker requotes (belief grid + skew + margin, then an optional adaptive
   ``QuoteAdjustment`` of margin and home/away skew), liquidity and depth are redrawn;
6. matches that just ended are settled: winning selections pay stake × odds to cash.

The **oracle** probability (``true_probability``) is the score grid of remaining goals with
the true hidden quantities: the fixture's true expected goals, the match's openness and the
slate's shared factor, the current score and red cards and the engine's score-state
multipliers; it ignores the momentum process (mean-one by construction) and the future
score-state effects, so it is an approximation of the engine's exact probability.

The jitted core assumes valid input: check stakes with ``validate_stakes`` at the
boundary (the environment layer projects them with ``market_sim.portfolio``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from market_sim import match
from market_sim.bookmaker import (
    MIN_ODDS,
    SELECTIONS,
    BookmakerProfile,
    GoalClock,
    QuoteAdjustment,
    adjusted_quote,
    liquidity_level,
    make_goal_clock,
    margin_parameters,
    market_probabilities,
    outcome_probabilities,
    quote,
    remaining_goal_means,
    update_skew,
)
from market_sim.checks import require_range
from market_sim.crowd import CrowdParams, crowd_flows
from market_sim.league_model import LeagueArrays, LeagueModel, fixture_params, sample_fixtures
from market_sim.params import MAX_TICKS, EngineParams, MatchParams, make_engine_params
from market_sim.signals import RingBuffer
from market_sim.state import MatchEvents, MatchState, clock_minute


@struct.dataclass
class ScheduleParams:
    """Regime schedule: shocks and shifts that are not part of normal pricing.

    - ``manipulation_rate``: probability per match-tick of a price shock with no event.
    - ``manipulation_size``: size of such a shock (log-odds on one selection).
    - ``manipulation_depth_factor``: depth multiplier while a withdrawal lasts.
    - ``manipulation_duration``: ticks a withdrawal lasts after a shock.
    - ``break_round``: first round (slate index) with the shifted team strengths.
    - ``break_lag_rounds``: rounds after the break until the bookmaker's belief adopts them.
    - ``break_shift``: [n_teams, 2] log shifts of (attack, defence) goal strengths.
    - ``red_card_multiplier``: multiplier of every fixture's red-card rate.
    - ``shared_factor_std``: sd of the slate's shared day/league factor (log goal rate).
    - ``goal_spread``: scale of each fixture's log expected goals around the league mean
      (> 1 makes strong teams stronger); fitted so that simulated closing prices score
      the real RPS (a Poisson engine on pooled strengths is less decisive than real
      football, see ``market_sim.market_calibration``).
    """

    manipulation_rate: Any = 0.0
    manipulation_size: Any = 0.0
    manipulation_depth_factor: Any = 1.0
    manipulation_duration: Any = 0
    break_round: Any = 1_000_000
    break_lag_rounds: Any = 0
    break_shift: Any = None
    red_card_multiplier: Any = 1.0
    shared_factor_std: Any = 0.1
    goal_spread: Any = 1.0


@struct.dataclass
class MarketParams:
    """Static parameters of the market (a pytree; ``n_matches``, ``pre_match_ticks``,
    ``gamma_window`` are static ints)."""

    league: LeagueArrays
    engine: EngineParams
    clock: GoalClock
    bookmaker: BookmakerProfile
    crowd: CrowdParams
    schedule: ScheduleParams
    bankroll: Any = 1000.0
    n_matches: int = struct.field(pytree_node=False, default=10)
    pre_match_ticks: int = struct.field(pytree_node=False, default=6)
    gamma_window: int = struct.field(pytree_node=False, default=50)


@struct.dataclass
class MarketState:
    """Dynamic state of one slate. Shapes: M matches, 5 selections, W = gamma window.

    - ``tick`` (int), ``round_index`` (int); ``home``/``away`` team indices [M];
    - ``match``: ``MatchState`` [M]; ``match_params``: true ``MatchParams`` [M, 2];
      ``shared_factor`` (scalar, slate's day factor);
    - ``belief_goals`` [M, 2] (bookmaker's close-level expected goals), ``news`` [M, 2]
      (snapshot log error, fading to 0 by the close); ``margin_parameter`` [M, 2] (per
      market, e.g. Shin's z, fixed at the snapshot);
    - ``skew`` [M, 5] (liability log-odds shift), ``odds`` [M, 5] (decimal, current),
      ``implied`` [M, 5] (p_mkt, de-margined), ``true_probability`` [M, 5] (oracle),
      ``trend`` [M, 5] (exponential average of p_mkt moves, herding signal);
    - ``snapshot_odds``/``closing_odds`` [M, 5];
    - ``liquidity`` [M] (currency per minute), ``depth`` [M, 5] (currency per tick),
      ``suspended`` [M] (ticks left), ``withdrawal`` [M] (manipulation ticks left);
    - ``book_stakes``/``book_payout`` [M, 5]: money taken and payouts owed (cumulative);
      ``our_staked``/``crowd_staked`` [M, 5]: cumulative fills by source;
    - ``our_stakes``/``our_payout`` [M, 5]: our open bets (stake, payout if it wins);
    - ``cash`` (scalar, currency), ``settled`` [M] bool;
    - ``our_flow_window``/``move_window``: ``RingBuffer`` [M, W] of our net 1X2 flow on
      the home side (home − away fills, currency) and the p_mkt move of home (γ inputs).
    """

    tick: Any
    round_index: Any
    home: Any
    away: Any
    match: MatchState
    match_params: MatchParams
    shared_factor: Any
    belief_goals: Any
    news: Any
    margin_parameter: Any
    skew: Any
    odds: Any
    implied: Any
    true_probability: Any
    trend: Any
    snapshot_odds: Any
    closing_odds: Any
    liquidity: Any
    depth: Any
    suspended: Any
    withdrawal: Any
    book_stakes: Any
    book_payout: Any
    our_staked: Any
    crowd_staked: Any
    our_stakes: Any
    our_payout: Any
    cash: Any
    settled: Any
    our_flow_window: RingBuffer
    move_window: RingBuffer


@struct.dataclass
class MarketStepInfo:
    """What happened in one tick ([M, 5] unless noted; currency for money).

    ``requested`` (our stakes after the cash limit), ``fills`` (ours), ``executed_odds``,
    ``crowd_fills``, ``crowd_recreational``/``crowd_herding``/``crowd_informed`` (wanted,
    before the depth limit), ``price_move`` (Δ p_mkt over the tick, incl. our impact),
    ``market_probability`` (p_mkt after the tick), ``true_probability`` (oracle after the
    tick), ``odds`` (after), ``depth`` (after), ``liquidity`` [M], ``suspended`` [M] bool,
    ``manipulated`` [M] bool (a shock this tick), ``settled_pnl`` (our P&L of bets settled
    this tick), ``book_pnl`` [M] (bookmaker's P&L of matches settled this tick),
    ``events`` (``MatchEvents`` [M]), ``minute`` [M] (SPEC clock), ``pre_match`` (scalar
    bool: the tick was pre-match), ``cash``, ``equity`` (cash + cash-out value of open
    bets), ``done`` (scalar: every match settled).
    """

    requested: Any
    fills: Any
    executed_odds: Any
    crowd_fills: Any
    crowd_recreational: Any
    crowd_herding: Any
    crowd_informed: Any
    price_move: Any
    market_probability: Any
    true_probability: Any
    odds: Any
    depth: Any
    liquidity: Any
    suspended: Any
    manipulated: Any
    settled_pnl: Any
    book_pnl: Any
    events: MatchEvents
    minute: Any
    pre_match: Any
    cash: Any
    equity: Any
    done: Any


def episode_ticks(params: MarketParams) -> int:
    """Steps after which every match of a slate is over and settled."""
    return params.pre_match_ticks + MAX_TICKS


def make_market_params(
    league: LeagueModel,
    bookmaker: BookmakerProfile,
    crowd: CrowdParams,
    schedule: ScheduleParams,
    engine_overrides: dict[str, float] | None = None,
    *,
    n_matches: int = 10,
    pre_match_ticks: int = 6,
    bankroll: float = 1000.0,
    gamma_window: int = 50,
) -> MarketParams:
    """Assemble validated ``MarketParams`` from a league model and the sub-models' params."""
    require_range("n_matches", n_matches, 1, len(league.teams) // 2)
    require_range("pre_match_ticks", pre_match_ticks, 1, 1000)
    require_range("bankroll", bankroll, 0.0, low_inclusive=False)
    engine = make_engine_params(**{**league.engine, **(engine_overrides or {})})
    if schedule.break_shift is None:
        schedule = dataclasses.replace(
            schedule, break_shift=jnp.zeros((len(league.teams), 2), jnp.float32)
        )
    return MarketParams(
        league=league.arrays(),
        engine=engine,
        clock=make_goal_clock(engine),
        bookmaker=bookmaker,
        crowd=crowd,
        schedule=schedule,
        bankroll=jnp.float32(bankroll),
        n_matches=int(n_matches),
        pre_match_ticks=int(pre_match_ticks),
        gamma_window=int(gamma_window),
    )


def validate_stakes(stakes: Any, params: MarketParams | None = None) -> None:
    """Raise ``ValueError`` (naming the index) for negative, NaN or infinite stakes, or a
    shape other than [M, 5]. Not jittable; ``step`` assumes stakes passed this check."""
    array = np.asarray(stakes, dtype=float)
    if params is not None and array.shape[-2:] != (params.n_matches, SELECTIONS):
        raise ValueError(
            f"stakes: expected shape [..., {params.n_matches}, {SELECTIONS}] (matches, "
            f"selections home/draw/away/over25/under25), got {array.shape}"
        )
    require_range("stakes", array, low=0.0)


# ----------------------------------------------------------------------------- pricing


def _true_goals(params: MarketParams, home: Any, away: Any, shifted: Any, goals: Any = None) -> Any:
    """(fixture ``MatchParams``, expected goals [M, 2] shifted after a structural break
    when ``shifted``); ``goals`` overrides the league model's goal rates."""
    base = fixture_params(params.league, home, away)
    league = params.league
    centre = jnp.exp(league.intercept[0] + jnp.stack([league.home_advantage[0], 0.0]))
    spread = centre * (base.goals / centre) ** params.schedule.goal_spread
    base = dataclasses.replace(
        base, goals=spread if goals is None else jnp.asarray(goals, jnp.float32)
    )
    shift = params.schedule.break_shift
    log_shift = jnp.stack(
        [shift[home, 0] + shift[away, 1], shift[away, 0] + shift[home, 1]], axis=-1
    )
    return base, base.goals * jnp.exp(jnp.where(shifted, log_shift, 0.0))


def fixture_goals(params: MarketParams, home: Any, away: Any) -> Any:
    """Expected goals [..., 2] of fixtures (team indices) before any structural break."""
    _, goals = _true_goals(params, home, away, False)
    return goals


def _probabilities(
    expected_goals: Any, state: MatchState, params: MarketParams, extra: Any = 0.0
) -> Any:
    """Score-grid probabilities [M, 5] for expected goals [M, 2] at the match state."""
    means = remaining_goal_means(
        expected_goals,
        state.score,
        state.red_cards,
        state.period[:, None],
        state.minute[:, None],
        state.added[:, None],
        params.engine,
        params.clock,
        extra,
    )
    return jax.vmap(outcome_probabilities)(state.score, means)


def _quote_all(
    state_match: MatchState,
    match_params: MatchParams,
    belief_goals: Any,
    news: Any,
    shared_factor: Any,
    skew: Any,
    margin_parameter: Any,
    tick: Any,
    params: MarketParams,
) -> tuple[Any, Any, Any]:
    """(odds, p_mkt, oracle), each [M, 5], after ``tick`` steps; ``margin_parameter``
    None = solve it (at the snapshot)."""
    news_weight = jnp.maximum(0.0, 1.0 - tick / params.pre_match_ticks)
    belief = _probabilities(belief_goals * jnp.exp(news * news_weight), state_match, params)
    hidden = state_match.openness + params.engine.shared_factor_loading * shared_factor
    oracle = _probabilities(match_params.goals, state_match, params, hidden[:, None])
    implied = market_probabilities(belief, skew)
    if margin_parameter is None:
        margin_parameter = margin_parameters(implied, params.bookmaker)
    return quote(implied, params.bookmaker, margin_parameter), implied, oracle


def _depth(
    normals: Any,
    tick: Any,
    state_match: MatchState,
    suspended: Any,
    withdrawal: Any,
    settled: Any,
    odds: Any,
    params: MarketParams,
) -> tuple[Any, Any]:
    """(liquidity [M], depth [M, 5]) after ``tick`` steps; ``normals`` [M], ``odds`` [M, 5].

    A selection quoted at the ``MIN_ODDS`` floor takes no money (depth 0): its price with
    the margin would be below the floor, i.e. it is decided or nearly so (over 2.5 once
    three goals are in, a three-goal lead in stoppage time). A book closes such a line;
    quoting it at 1.01 would hand out a near risk-free 1% per bet.
    """
    minute = clock_minute(state_match)
    liquidity = liquidity_level(normals, tick, params.pre_match_ticks, minute, params.bookmaker)
    open_book = (~state_match.done) & (suspended == 0) & (~settled)
    factor = jnp.where(withdrawal > 0, params.schedule.manipulation_depth_factor, 1.0)
    depth = params.bookmaker.depth_fraction * liquidity * factor * open_book
    priced = odds > MIN_ODDS * (1.0 + 1e-6)
    return liquidity, depth[:, None] * priced


def _empty_window(params: MarketParams) -> RingBuffer:
    return RingBuffer(
        values=jnp.zeros((params.n_matches, params.gamma_window), jnp.float32),
        count=jnp.zeros((), jnp.int32),
        position=jnp.zeros((), jnp.int32),
    )


# ------------------------------------------------------------------------ reset / step


def reset_with_fixtures(
    key: jax.Array,
    params: MarketParams,
    home: Any,
    away: Any,
    round_index: Any = 0,
    cash: Any = None,
    goals: Any = None,
) -> MarketState:
    """Pre-match state of a slate with given fixtures (team indices [M]); quotes the snapshot.

    ``goals`` [M, 2] (optional) replaces the league model's expected goals of the fixtures
    (e.g. rates fitted on the very seasons being replayed, for the market calibration).
    """
    key_match, key_shared, key_belief, key_news, key_liquidity = jax.random.split(key, 5)
    m = params.n_matches
    shifted = round_index >= params.schedule.break_round
    known = round_index >= params.schedule.break_round + params.schedule.break_lag_rounds
    base, true_goals = _true_goals(params, home, away, shifted, goals)
    _, known_goals = _true_goals(params, home, away, known, goals)
    match_params = dataclasses.replace(
        base,
        goals=true_goals,
        red_cards=base.red_cards * params.schedule.red_card_multiplier,
    )
    match_states = jax.vmap(match.reset, in_axes=(0, 0, None))(
        jax.random.split(key_match, m), match_params, params.engine
    )
    shared_factor = params.schedule.shared_factor_std * jax.random.normal(key_shared)
    profile = params.bookmaker
    belief_goals = known_goals * jnp.exp(
        profile.belief_noise * jax.random.normal(key_belief, (m, 2))
    )
    news = profile.news_noise * jax.random.normal(key_news, (m, 2))
    skew = jnp.zeros((m, SELECTIONS), jnp.float32)
    tick = jnp.int32(0)
    implied0 = market_probabilities(
        _probabilities(belief_goals * jnp.exp(news), match_states, params), skew
    )
    margin_parameter = margin_parameters(implied0, params.bookmaker)
    odds, implied, oracle = _quote_all(
        match_states,
        match_params,
        belief_goals,
        news,
        shared_factor,
        skew,
        margin_parameter,
        tick,
        params,
    )
    suspended = jnp.zeros(m, jnp.int32)
    settled = jnp.zeros(m, bool)
    liquidity, depth = _depth(
        jax.random.normal(key_liquidity, (m,)),
        tick,
        match_states,
        suspended,
        suspended,
        settled,
        odds,
        params,
    )
    zeros = jnp.zeros((m, SELECTIONS), jnp.float32)
    return MarketState(
        tick=tick,
        round_index=jnp.int32(round_index),
        home=jnp.asarray(home, jnp.int32),
        away=jnp.asarray(away, jnp.int32),
        match=match_states,
        match_params=match_params,
        shared_factor=jnp.float32(shared_factor),
        belief_goals=belief_goals,
        news=news,
        margin_parameter=margin_parameter,
        skew=skew,
        odds=odds,
        implied=implied,
        true_probability=oracle,
        trend=zeros,
        snapshot_odds=odds,
        closing_odds=odds,
        liquidity=liquidity,
        depth=depth,
        suspended=suspended,
        withdrawal=suspended,
        book_stakes=zeros,
        book_payout=zeros,
        our_staked=zeros,
        crowd_staked=zeros,
        our_stakes=zeros,
        our_payout=zeros,
        cash=jnp.float32(params.bankroll if cash is None else cash),
        settled=settled,
        our_flow_window=_empty_window(params),
        move_window=_empty_window(params),
    )


def reset(
    key: jax.Array, params: MarketParams, round_index: Any = 0, cash: Any = None
) -> MarketState:
    """Pre-match state of a new slate of ``params.n_matches`` random fixtures."""
    key_fixtures, key_reset = jax.random.split(key)
    n_teams = params.league.for_strength.shape[1]
    home, away = sample_fixtures(key_fixtures, n_teams, params.n_matches)
    return reset_with_fixtures(key_reset, params, home, away, round_index, cash)


def next_round(key: jax.Array, state: MarketState, params: MarketParams) -> MarketState:
    """The next slate of a season: round index + 1, cash carried over (open bets are
    assumed settled, i.e. call after ``episode_ticks`` steps)."""
    return reset(key, params, state.round_index + 1, state.cash)


def outcome_indicators(score: Any) -> Any:
    """Winning selections at full time [..., 5] (float 0/1) from final scores [..., 2]."""
    home, away = score[..., 0], score[..., 1]
    total = home + away
    return jnp.stack(
        [home > away, home == away, home < away, total >= 3, total < 3], axis=-1
    ).astype(jnp.float32)


def cash_out_value(payout: Any, odds: Any) -> Any:
    """Cash-out value of open bets at the current odds: payout / odds (stake × taken odds /
    current odds), currency, elementwise."""
    return payout / odds


def _ring_push(buffer: RingBuffer, value: Any) -> RingBuffer:
    """Push [M] values into a [M, W] ring buffer with a shared position (one column
    written in place, not a masked rewrite of the window)."""
    window = buffer.values.shape[-1]
    return RingBuffer(
        values=buffer.values.at[:, buffer.position].set(value),
        count=jnp.minimum(buffer.count + 1, window).astype(jnp.int32),
        position=((buffer.position + 1) % window).astype(jnp.int32),
    )


def step(
    key: jax.Array,
    state: MarketState,
    stakes: Any,
    params: MarketParams,
    adjustment: QuoteAdjustment | None = None,
) -> tuple[MarketState, MarketStepInfo]:
    """One tick of the slate; ``stakes`` [M, 5] back stakes in currency (valid input).

    ``adjustment`` (optional, fields [M]): an adaptive bookmaker's margin multiplier and
    home/away skew, applied to this tick's requote (stage 5), i.e. to the prices that the
    next tick's bets are filled at, that the crowd sees and that ``odds``/``implied``
    report. ``None`` (the default) is the scripted bookmaker, unchanged.
    """
    m = params.n_matches
    # All of a tick's randomness in two batched draws (cheaper than a key per match).
    key_uniform, key_normal = jax.random.split(key)
    uniforms = jax.random.uniform(key_uniform, (m, match.UNIFORMS_PER_TICK + 3))
    normals = jax.random.normal(key_normal, (m, 2 + SELECTIONS + 1))
    profile = params.bookmaker
    pre_match = state.tick < params.pre_match_ticks

    # 1. Our fills at the current price, up to depth, never beyond the cash.
    stakes = jnp.asarray(stakes, jnp.float32)
    total = stakes.sum()
    requested = stakes * jnp.minimum(1.0, state.cash / jnp.maximum(total, 1e-9))
    fills = jnp.minimum(requested, state.depth)
    executed_odds = state.odds
    cash = jnp.maximum(state.cash - fills.sum(), 0.0)

    # 2. The crowd, at the same prices, up to the depth left.
    recreational, herding, informed = jax.vmap(crowd_flows, in_axes=(0, 0, 0, 0, 0, 0, None))(
        normals[:, 2 : 2 + SELECTIONS],
        state.implied,
        state.odds,
        state.true_probability,
        state.trend,
        state.liquidity,
        params.crowd,
    )
    crowd_fills = jnp.minimum(recreational + herding + informed, state.depth - fills)
    flow = fills + crowd_fills
    skew = update_skew(state.skew, flow, state.implied, state.liquidity, profile)

    # 3. Manipulation: a price shock and a depth withdrawal with no match event behind it.
    schedule = params.schedule
    shock = uniforms[:, match.UNIFORMS_PER_TICK :]
    manipulated = shock[:, 0] < schedule.manipulation_rate
    which = jax.nn.one_hot(
        jnp.minimum((shock[:, 1] * SELECTIONS).astype(jnp.int32), SELECTIONS - 1), SELECTIONS
    )
    sign = jnp.where(shock[:, 2] < 0.5, -1.0, 1.0)
    skew = skew + (manipulated * sign * schedule.manipulation_size)[:, None] * which
    withdrawal = jnp.where(
        manipulated, schedule.manipulation_duration, jnp.maximum(state.withdrawal - 1, 0)
    ).astype(jnp.int32)

    # 4. The match minute (in-play only).
    new_match, events = jax.vmap(match.advance, in_axes=(0, 0, 0, 0, None, None))(
        state.match,
        uniforms[:, : match.UNIFORMS_PER_TICK],
        normals[:, :2],
        state.match_params,
        params.engine,
        state.shared_factor,
    )
    new_match = jax.tree.map(
        lambda new, old: jnp.where(pre_match, old, new), new_match, state.match
    )
    events = jax.tree.map(lambda e: jnp.where(pre_match, jnp.zeros_like(e), e), events)
    incident = (events.goals.sum(-1) + events.red_cards.sum(-1)) > 0
    suspended = jnp.where(
        incident, profile.suspension_minutes, jnp.maximum(state.suspended - 1, 0)
    ).astype(jnp.int32)

    # 5. Requote, liquidity and depth.
    tick = state.tick + 1
    odds, implied, oracle = _quote_all(
        new_match,
        state.match_params,
        state.belief_goals,
        state.news,
        state.shared_factor,
        skew,
        state.margin_parameter,
        tick,
        params,
    )
    if adjustment is not None:
        odds, implied = adjusted_quote(
            implied, params.bookmaker, state.margin_parameter, adjustment
        )
    newly_settled = new_match.done & ~state.settled
    settled = state.settled | new_match.done
    liquidity, depth = _depth(
        normals[:, 2 + SELECTIONS], tick, new_match, suspended, withdrawal, settled, odds, params
    )
    move = implied - state.implied
    memory = params.crowd.herding_memory
    trend = memory * state.trend + (1.0 - memory) * move

    # 6. Settlement at full time.
    our_stakes = state.our_stakes + fills
    our_payout = state.our_payout + fills * executed_odds
    won = outcome_indicators(new_match.score)
    settle = newly_settled[:, None]
    payout = jnp.where(settle, our_payout * won, 0.0)
    settled_pnl = jnp.where(settle, payout - our_stakes, 0.0)
    cash = cash + payout.sum()
    our_stakes = jnp.where(settle, 0.0, our_stakes)
    our_payout = jnp.where(settle, 0.0, our_payout)
    book_stakes = state.book_stakes + flow
    book_payout = state.book_payout + flow * executed_odds
    book_pnl = jnp.where(newly_settled, (book_stakes - book_payout * won).sum(-1), 0.0)
    equity = cash + cash_out_value(our_payout, odds).sum()

    new_state = MarketState(
        tick=tick,
        round_index=state.round_index,
        home=state.home,
        away=state.away,
        match=new_match,
        match_params=state.match_params,
        shared_factor=state.shared_factor,
        belief_goals=state.belief_goals,
        news=state.news,
        margin_parameter=state.margin_parameter,
        skew=skew,
        odds=odds,
        implied=implied,
        true_probability=oracle,
        trend=trend,
        snapshot_odds=state.snapshot_odds,
        closing_odds=jnp.where(tick == params.pre_match_ticks, odds, state.closing_odds),
        liquidity=liquidity,
        depth=depth,
        suspended=suspended,
        withdrawal=withdrawal,
        book_stakes=book_stakes,
        book_payout=book_payout,
        our_staked=state.our_staked + fills,
        crowd_staked=state.crowd_staked + crowd_fills,
        our_stakes=our_stakes,
        our_payout=our_payout,
        cash=cash,
        settled=settled,
        our_flow_window=_ring_push(state.our_flow_window, fills[:, 0] - fills[:, 2]),
        move_window=_ring_push(state.move_window, move[:, 0]),
    )
    info = MarketStepInfo(
        requested=requested,
        fills=fills,
        executed_odds=executed_odds,
        crowd_fills=crowd_fills,
        crowd_recreational=recreational,
        crowd_herding=herding,
        crowd_informed=informed,
        price_move=move,
        market_probability=implied,
        true_probability=oracle,
        odds=odds,
        depth=depth,
        liquidity=liquidity,
        suspended=suspended > 0,
        manipulated=manipulated,
        settled_pnl=settled_pnl,
        book_pnl=book_pnl,
        events=events,
        minute=clock_minute(new_match),
        pre_match=pre_match,
        cash=cash,
        equity=equity,
        done=jnp.all(settled),
    )
    return new_state, info


def rollout(
    key: jax.Array, params: MarketParams, stakes: Any, round_index: Any = 0
) -> tuple[MarketState, MarketStepInfo]:
    """Reset S slates and play T ticks with fixed stakes [S, T, M, 5] (currency).

    Returns the final states (leading axis S) and the per-tick infos (axes [S, T, ...]).
    ``lax.scan`` over ticks, ``vmap`` over slates; jit it once and reuse it (tests,
    benchmarks and replays share one compiled program per shape).
    """
    slates, ticks = stakes.shape[0], stakes.shape[1]

    def one(slate_key: jax.Array, slate_stakes: Any) -> tuple[MarketState, MarketStepInfo]:
        key_reset, key_steps = jax.random.split(slate_key)
        state = reset(key_reset, params, round_index)

        def body(carry: MarketState, inputs: tuple[Any, Any]) -> tuple[MarketState, Any]:
            return step(inputs[0], carry, inputs[1], params)

        return jax.lax.scan(body, state, (jax.random.split(key_steps, ticks), slate_stakes))

    return jax.vmap(one)(jax.random.split(key, slates), stakes)

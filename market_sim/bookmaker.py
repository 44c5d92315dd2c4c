"""The simulated bookmaker: belief, live score grid, margin, liability skew, depth.

Selections per match (last axis, size ``SELECTIONS`` = 5): home, draw, away (the 1X2
market) and over 2.5, under 2.5 (the O/U market). Probabilities are per market (the
first three sum to 1, the last two sum to 1); odds are decimal (stake included).

How a price is made, every tick:

1. **Belief** of the remaining goals: Poisson means per side, from the bookmaker's
   own (noisy) pre-match expected goals times the share of the match's goal intensity
   still to come (``remaining_goal_mass``: the league's ``goal_profile`` summed from the
   next minute to the expected end, stoppage included, precomputed in ``GoalClock``)
   times the engine's current score-state and red-card multipliers.
2. **Score grid** of the remaining goals (``outcome_probabilities``): 1X2 and O/U 2.5.
3. **Liability skew**: log-odds shifts per selection driven by net money (``update_skew``);
   the quoted fair probabilities are the belief tilted by ``exp(skew)``, renormalised per
   market. The skew decays toward 0 each minute (a stale price drifts to the belief).
4. **Margin** per market with the profile's method and target overround
   (``market_sim.margin.apply_margin``; for Shin the insider share z is solved once per
   match at the snapshot and held, see ``margin_parameters``). The de-margined market
   probability ``p_mkt`` is the tilted belief.

Depth (the most the book takes at the current price, per selection per tick) and matched
liquidity (currency per minute) grow toward kick-off, vary in-play, and are 0 while the
book is suspended (a few minutes after a goal or a red card).
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import struct

from market_sim.margin import apply_margin, shin_z
from market_sim.params import STOPPAGE_FIRST_MAX, STOPPAGE_SECOND_MAX, EngineParams

#: Selections per match: home, draw, away, over 2.5, under 2.5.
SELECTIONS = 5
SELECTION_NAMES = ("home", "draw", "away", "over25", "under25")
#: Remaining goals per side on the score grid (Poisson mass above this is dropped).
GRID_GOALS = 10
#: Smallest fair probability a price is made from (odds are capped near 1/0.002 = 500).
PROBABILITY_FLOOR = 2e-3
#: Skew bound (log-odds), so that no flow can push a price to 0 or infinity.
SKEW_LIMIT = 3.0
#: Shortest price ever quoted (decimal odds).
MIN_ODDS = 1.01


@struct.dataclass
class BookmakerProfile:
    """One bookmaker's pricing behaviour (scalars; ``margin_method`` static).

    - ``overround_1x2`` / ``overround_ou``: target Σ1/odds − 1 (0.03 = 3 %).
    - ``belief_noise``: sd of the log error of its pre-match expected goals per side, at
      the close (sharp books small, soft books larger).
    - ``news_noise``: extra sd of that log error at the pre-match snapshot; it fades
      linearly to 0 by kick-off (information arriving: the ``price_drift`` source).
    - ``liability_sensitivity``: log-odds shift per unit of net money / liquidity.
    - ``skew_reversion``: share of the skew removed per tick (drift toward the belief).
    - ``suspension_minutes``: ticks without betting after a goal or a red card.
    - ``liquidity_close``: matched money per minute at kick-off (currency per minute).
    - ``liquidity_snapshot_share``: liquidity at the snapshot as a share of the close.
    - ``liquidity_inplay``: in-play level as a share of the close (rises by half by 90').
    - ``liquidity_noise``: sd of the per-minute log noise of in-play liquidity.
    - ``depth_fraction``: depth per selection per tick as a share of the liquidity.
    """

    overround_1x2: Any = 0.055
    overround_ou: Any = 0.05
    belief_noise: Any = 0.07
    news_noise: Any = 0.08
    liability_sensitivity: Any = 0.15
    skew_reversion: Any = 0.1
    suspension_minutes: Any = 2
    liquidity_close: Any = 5000.0
    liquidity_snapshot_share: Any = 0.3
    liquidity_inplay: Any = 0.6
    liquidity_noise: Any = 0.2
    depth_fraction: Any = 0.25
    margin_method: str = struct.field(pytree_node=False, default="shin")


@struct.dataclass
class GoalClock:
    """Cumulative goal-profile tables of a league (``goal_profile`` units, see params).

    - ``first_regulation[m]``: profile mass of first-half minutes m+1..45, m = 0..45.
    - ``second_regulation[m - 45]``: mass of minutes m+1..90, m = 45..90.
    - ``first_stoppage_left[a]`` / ``second_stoppage_left[a]``: expected stoppage minutes
      still to come once ``a`` have been played, E[S − a | S ≥ a].
    - ``first_last`` / ``second_last``: rate of a stoppage minute (the half's last minute).
    - ``goal_exposure``: the whole match's expected mass (the engine's normaliser).
    """

    first_regulation: Any
    second_regulation: Any
    first_stoppage_left: Any
    second_stoppage_left: Any
    first_last: Any
    second_last: Any
    goal_exposure: Any


def _stoppage_left(pmf: np.ndarray) -> np.ndarray:
    k = np.arange(pmf.size)
    left = []
    for a in range(pmf.size):
        tail = pmf[a:]
        mass = tail.sum()
        left.append(float(((k[a:] - a) * tail).sum() / mass) if mass > 1e-12 else 0.0)
    return np.asarray(left)


def make_goal_clock(engine: EngineParams) -> GoalClock:
    """Precompute the ``GoalClock`` tables of a concrete ``engine`` (once per params)."""
    fraction = np.arange(1, 46) / 45.0
    first = np.exp(float(engine.first_half_slope) * fraction)
    second = np.exp(float(engine.second_half_level) + float(engine.second_half_slope) * fraction)
    first_regulation = np.concatenate([np.cumsum(first[::-1])[::-1], [0.0]])
    second_regulation = np.concatenate([np.cumsum(second[::-1])[::-1], [0.0]])
    pmf_first = np.asarray(engine.stoppage_first_pmf, dtype=float)
    pmf_second = np.asarray(engine.stoppage_second_pmf, dtype=float)
    if pmf_first.size != STOPPAGE_FIRST_MAX + 1 or pmf_second.size != STOPPAGE_SECOND_MAX + 1:
        raise ValueError(
            "engine: stoppage pmfs must have STOPPAGE_*_MAX + 1 entries, got "
            f"{pmf_first.size} and {pmf_second.size}"
        )
    f32 = jnp.float32
    return GoalClock(
        first_regulation=jnp.asarray(first_regulation, f32),
        second_regulation=jnp.asarray(second_regulation, f32),
        first_stoppage_left=jnp.asarray(_stoppage_left(pmf_first), f32),
        second_stoppage_left=jnp.asarray(_stoppage_left(pmf_second), f32),
        first_last=f32(first[-1]),
        second_last=f32(second[-1]),
        goal_exposure=f32(engine.goal_exposure),
    )


def remaining_goal_mass(clock: GoalClock, period: Any, minute: Any, added: Any) -> Any:
    """Expected goal-profile mass still to be played after the last played tick.

    period/minute/added as in ``MatchState`` (pre-match: the whole match). Divided by
    ``clock.goal_exposure`` this is the share of a match's expected goals still to come.
    """
    in_first = period <= 1
    first_minute = jnp.where(period == 1, minute, 0)
    first_added = jnp.where(period == 1, added, 0)
    first_part = (
        clock.first_regulation[first_minute]
        + clock.first_stoppage_left[jnp.minimum(first_added, STOPPAGE_FIRST_MAX)] * clock.first_last
    )
    second_total = clock.second_regulation[0] + clock.second_stoppage_left[0] * clock.second_last
    second_minute = jnp.clip(minute - 45, 0, 45)
    second_added = jnp.where(period == 2, jnp.minimum(added, STOPPAGE_SECOND_MAX), 0)
    second_part = (
        clock.second_regulation[second_minute]
        + clock.second_stoppage_left[second_added] * clock.second_last
    )
    return jnp.where(in_first, first_part + second_total, second_part)


def state_log_multiplier(score: Any, red_cards: Any, engine: EngineParams) -> Any:
    """Current score-state and red-card log multipliers of each side's goal rate, [2].

    The engine's ``goal_scale`` corrections are left out: they compensate, on average,
    for the future score effects this one-step-ahead view ignores, so that pre-match the
    remaining means equal the fixture's expected goals.
    """
    lead = score - score[..., ::-1]
    reds = jnp.minimum(red_cards, 2).astype(jnp.float32)
    goals_so_far = jnp.minimum(score.sum(-1, keepdims=True), 6).astype(jnp.float32)
    return (
        engine.lead_effect * (lead > 0)
        + engine.trail_effect * (lead < 0)
        + engine.total_goals_effect * goals_so_far
        + engine.red_self_effect * reds
        + engine.red_opponent_effect * reds[..., ::-1]
    )


def remaining_goal_means(
    expected_goals: Any,
    score: Any,
    red_cards: Any,
    period: Any,
    minute: Any,
    added: Any,
    engine: EngineParams,
    clock: GoalClock,
    extra_log_multiplier: Any = 0.0,
) -> Any:
    """Poisson means of the goals still to come per side, [2].

    expected_goals [2]: a whole match's expected goals (belief or truth);
    extra_log_multiplier: hidden terms only the truth knows (openness, shared factor).
    """
    share = remaining_goal_mass(clock, period, minute, added) / clock.goal_exposure
    log_multiplier = state_log_multiplier(score, red_cards, engine) + extra_log_multiplier
    return expected_goals * share * jnp.exp(log_multiplier)


def _poisson_pmf(mean: Any) -> Any:
    k = jnp.arange(GRID_GOALS + 1, dtype=jnp.float32)
    log_factorial = jnp.asarray([math.lgamma(i + 1.0) for i in range(GRID_GOALS + 1)], jnp.float32)
    mean = jnp.maximum(mean, 1e-9)
    return jnp.exp(k * jnp.log(mean)[..., None] - mean[..., None] - log_factorial)


def outcome_probabilities(score: Any, remaining_means: Any) -> Any:
    """P(home, draw, away, over 2.5, under 2.5) at full time from the score grid, [5].

    score [2] int (current), remaining_means [2] (Poisson means of goals to come).
    """
    pmf_home = _poisson_pmf(remaining_means[0])
    pmf_away = _poisson_pmf(remaining_means[1])
    joint = pmf_home[:, None] * pmf_away[None, :]
    k = jnp.arange(GRID_GOALS + 1)
    difference = (score[0] - score[1]) + k[:, None] - k[None, :]
    total_mass = joint.sum()
    home = jnp.sum(jnp.where(difference > 0, joint, 0.0)) / total_mass
    draw = jnp.sum(jnp.where(difference == 0, joint, 0.0)) / total_mass
    away = jnp.maximum(1.0 - home - draw, 0.0)
    # Goals still needed for "over 2.5"; the sum of the two sides is Poisson(μh + μa).
    needed = 3 - (score[0] + score[1])
    mean_total = remaining_means[0] + remaining_means[1]
    pmf_total = _poisson_pmf(mean_total)[:3]
    under = jnp.sum(jnp.where(jnp.arange(3) < needed, pmf_total, 0.0))
    over = 1.0 - under
    return jnp.stack([home, draw, away, over, under])


def normalise_markets(weights: Any) -> Any:
    """Scale [..., 5] non-negative weights so each market (1X2, O/U) sums to 1."""
    one_x_two = weights[..., :3] / jnp.sum(weights[..., :3], axis=-1, keepdims=True)
    over_under = weights[..., 3:] / jnp.sum(weights[..., 3:], axis=-1, keepdims=True)
    return jnp.concatenate([one_x_two, over_under], axis=-1)


def floor_probabilities(probabilities: Any) -> Any:
    """Keep every fair probability ≥ ``PROBABILITY_FLOOR`` (per market, renormalised)."""
    return normalise_markets(jnp.maximum(probabilities, PROBABILITY_FLOOR))


def market_probabilities(belief: Any, skew: Any) -> Any:
    """p_mkt: belief [..., 5] tilted by the liability skew [..., 5] (log-odds), per market."""
    return floor_probabilities(normalise_markets(belief * jnp.exp(skew)))


def _shin_odds(probabilities: Any, z: Any) -> Any:
    """Shin's odds for a fixed insider share ``z`` [...]: closed form, [..., K].

    π_i = √B · √(z p_i + (1 − z) p_i²) with √B = Σ_j √(z p_j + (1 − z) p_j²) (Shin 1993);
    the same relation ``margin.apply_margin(..., "shin")`` solves for z given B.
    """
    roots = jnp.sqrt(z[..., None] * probabilities + (1.0 - z[..., None]) * probabilities**2)
    return 1.0 / (roots * jnp.sum(roots, axis=-1, keepdims=True))


def margin_parameters(probabilities: Any, profile: BookmakerProfile) -> Any:
    """Per-market margin parameter [..., 2] (1X2, O/U), solved once per match.

    For ``shin`` this is the insider share z that gives the profile's target overround at
    these (snapshot) probabilities; later quotes keep z fixed (Shin's model: z is a
    property of the market's clientele), so the overround moves a little with the
    probabilities. Other methods re-solve the target overround every tick; they return 0.
    """
    shape = probabilities.shape[:-1]
    if profile.margin_method != "shin":
        return jnp.zeros((*shape, 2), jnp.float32)
    one_x_two = apply_margin(
        probabilities[..., :3], jnp.broadcast_to(profile.overround_1x2, shape), "shin"
    )
    over_under = apply_margin(
        probabilities[..., 3:], jnp.broadcast_to(profile.overround_ou, shape), "shin"
    )
    return jnp.stack([shin_z(one_x_two), shin_z(over_under)], axis=-1)


def quote(probabilities: Any, profile: BookmakerProfile, margin_parameter: Any) -> Any:
    """Decimal odds [..., 5] with the profile's margin on fair ``probabilities`` [..., 5].

    ``margin_parameter`` [..., 2] from ``margin_parameters`` (used by ``shin``); other
    methods apply the target overround with ``market_sim.margin.apply_margin``.
    """
    shape = probabilities.shape[:-1]
    if profile.margin_method == "shin":
        one_x_two = _shin_odds(probabilities[..., :3], margin_parameter[..., 0])
        over_under = _shin_odds(probabilities[..., 3:], margin_parameter[..., 1])
    else:
        one_x_two = apply_margin(
            probabilities[..., :3],
            jnp.broadcast_to(profile.overround_1x2, shape),
            profile.margin_method,
        )
        over_under = apply_margin(
            probabilities[..., 3:],
            jnp.broadcast_to(profile.overround_ou, shape),
            profile.margin_method,
        )
    # A decided market's favourite would be quoted below evens-of-nothing; books cap it.
    return jnp.maximum(jnp.concatenate([one_x_two, over_under], axis=-1), MIN_ODDS)


@struct.dataclass
class QuoteAdjustment:
    """A pricing decision on top of the profile's quote (an adaptive bookmaker's action).

    Per match, shapes [..., M] (broadcast against the quote's leading axes):

    - ``margin_multiplier`` (> 0): scales each market's margin, per selection: the inverse
      odds become π' = p + multiplier · (π − p), p = the quoted fair probability, π = the
      profile's inverse odds; so the overround is multiplier × the profile's and the
      margin keeps its shape across selections (Shin's favourite–longshot split).
    - ``home_away_skew`` (log-odds): tilts the 1X2 fair probabilities, home × e^s, away ×
      e^−s, draw unchanged, renormalised and floored at ``PROBABILITY_FLOOR`` within the
      1X2 market (> 0 shortens home, lengthens away); the O/U market is untouched. It
      changes p_mkt (the de-margined quote), like the liability skew does.
    """

    margin_multiplier: Any
    home_away_skew: Any


def tilt_home_away(probabilities: Any, home_away_skew: Any) -> Any:
    """Fair probabilities [..., 5] with the 1X2 home/away tilt ``home_away_skew`` [...]
    (log-odds; a scalar broadcasts)."""
    skew = jnp.asarray(home_away_skew, jnp.float32)
    shift = jnp.stack([skew, jnp.zeros_like(skew), -skew], axis=-1)
    weights = jnp.maximum(probabilities[..., :3] * jnp.exp(shift), 0.0)
    one_x_two = weights / jnp.sum(weights, axis=-1, keepdims=True)
    one_x_two = jnp.maximum(one_x_two, PROBABILITY_FLOOR)
    one_x_two = one_x_two / jnp.sum(one_x_two, axis=-1, keepdims=True)
    # No skew, no change (flooring twice is not idempotent at the floor).
    one_x_two = jnp.where(skew[..., None] == 0.0, probabilities[..., :3], one_x_two)
    return jnp.concatenate([one_x_two, probabilities[..., 3:]], axis=-1)


def scale_margin(probabilities: Any, odds: Any, margin_multiplier: Any) -> Any:
    """Odds [..., 5] whose margin over ``probabilities`` is ``margin_multiplier`` [...]
    times that of ``odds``; every price stays in [``MIN_ODDS``, 1 / ``PROBABILITY_FLOOR``]."""
    multiplier = jnp.asarray(margin_multiplier, jnp.float32)[..., None]
    inverse = probabilities + multiplier * (1.0 / odds - probabilities)
    return 1.0 / jnp.clip(inverse, PROBABILITY_FLOOR, 1.0 / MIN_ODDS)


def adjusted_quote(
    probabilities: Any,
    profile: BookmakerProfile,
    margin_parameter: Any,
    adjustment: QuoteAdjustment,
) -> tuple[Any, Any]:
    """(odds, p_mkt) [..., 5]: the profile's quote of ``probabilities`` [..., 5] (the
    tilted belief) after a ``QuoteAdjustment``: skew first, then the margin scaled.

    Prices are > 1 (≥ ``MIN_ODDS``) and finite; with a multiplier > 0 the overround keeps
    the profile quote's sign (≥ 0 wherever no price is at the ``MIN_ODDS`` cap). A neutral
    adjustment (multiplier 1, skew 0) reproduces ``quote`` up to float rounding.
    """
    implied = tilt_home_away(probabilities, adjustment.home_away_skew)
    odds = quote(implied, profile, margin_parameter)
    return scale_margin(implied, odds, adjustment.margin_multiplier), implied


def update_skew(
    skew: Any, flow: Any, market_probability: Any, liquidity: Any, profile: BookmakerProfile
) -> Any:
    """Liability skew after a tick's money ``flow`` [..., 5] (currency) and reversion.

    The net money on selection j beyond its fair share of the market's flow,
    flow_j − p_j · Σ_market flow, shortens j's price: Δskew_j = sensitivity · net_j / L
    (L = the tick's liquidity, currency). The impact therefore grows monotonically with
    stake / liquidity; money spread in proportion to p_mkt moves nothing. Then a share
    ``skew_reversion`` of the skew decays (a stale price drifts toward the belief).
    """
    market_flow = jnp.concatenate(
        [
            jnp.broadcast_to(flow[..., :3].sum(-1, keepdims=True), flow[..., :3].shape),
            jnp.broadcast_to(flow[..., 3:].sum(-1, keepdims=True), flow[..., 3:].shape),
        ],
        axis=-1,
    )
    net = flow - market_probability * market_flow
    shifted = skew + profile.liability_sensitivity * net / jnp.maximum(liquidity, 1e-6)[..., None]
    decayed = shifted * (1.0 - profile.skew_reversion)
    return jnp.clip(decayed, -SKEW_LIMIT, SKEW_LIMIT)


def liquidity_level(
    normal: Any, tick: Any, pre_match_ticks: int, minute: Any, profile: BookmakerProfile
) -> Any:
    """Matched liquidity (currency per minute) of matches at ``tick`` (``normal``: a
    standard normal draw per match for the in-play noise; shapes broadcast).

    Pre-match (tick ≤ ``pre_match_ticks``) it ramps linearly from the snapshot share up
    to ``liquidity_close`` at the close (kick-off); in-play it sits at ``liquidity_inplay`` of the
    close, rising by half toward the 90th minute, with log-normal per-minute noise.
    """
    ramp = profile.liquidity_snapshot_share + (1.0 - profile.liquidity_snapshot_share) * (
        jnp.minimum(tick, pre_match_ticks) / max(pre_match_ticks, 1)
    )
    noise = profile.liquidity_noise * normal - 0.5 * profile.liquidity_noise**2
    inplay = (
        profile.liquidity_inplay * (1.0 + 0.5 * jnp.minimum(minute, 90) / 90.0) * jnp.exp(noise)
    )
    # The quote at tick == pre_match_ticks is the close: full pre-match liquidity.
    return profile.liquidity_close * jnp.where(tick <= pre_match_ticks, ramp, inplay)

"""Static parameters of the match engine: per-league structure and per-match rates.

Two immutable pytrees, gymnax-style:

- ``EngineParams``: the league's structural parameters (goal-time profile, stoppage
  time, score-state and red-card effects, momentum process, over-dispersion). Shared by
  every match of a league; fitted by ``market_sim.calibrate``.
- ``MatchParams``: one fixture's expected counts per side (goals, shots, shots on
  target, corners, fouls, yellow and red cards), e.g. from the team-strength fits.
  Arrays of shape ``[2]`` (home, away); a batch of matches has shape ``[B, 2]``.

Build them with ``make_engine_params`` / ``make_match_params``: those check ranges on
concrete values (naming the field) and derive the normalisers the jitted engine needs,
so that a match built with ``goals=[1.5, 1.2]`` really averages about 1.5 and 1.2 goals.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import struct

from market_sim.checks import require_range

#: Longest first-half stoppage the engine can draw (minutes); fixes the scan length.
STOPPAGE_FIRST_MAX = 8
#: Longest second-half stoppage the engine can draw (minutes).
STOPPAGE_SECOND_MAX = 15
#: Ticks needed to play any match to the end: 90 regulation minutes plus both maxima.
MAX_TICKS = 90 + STOPPAGE_FIRST_MAX + STOPPAGE_SECOND_MAX


@struct.dataclass
class EngineParams:
    """League-level structure of the in-play match engine (all scalars, float32).

    Goal intensity of side s in a minute (per minute)::

        rate_s = goals_s / goal_exposure * profile(minute)
                 * exp(goal_scale_s + lead_effect*[s leads] + trail_effect*[s trails]
                       + total_goals_effect*min(goals so far, 6)
                       + red_self_effect*reds_s + red_opponent_effect*reds_other
                       + momentum_goal_loading*m_s - 0.5*(momentum_goal_loading*momentum_std)^2
                       + openness + shared_factor_loading*shared_factor)

    where ``profile`` is log-linear within each half (Dixon & Robinson 1998: the scoring
    rate rises through the match) and ``m_s`` is the side's Ornstein–Uhlenbeck pressure.
    """

    # Goal-time profile: log-rate = slope * (minute within half / 45), second half
    # additionally shifted by ``second_half_level`` (log ratio to the first half).
    first_half_slope: Any = 0.0
    second_half_level: Any = 0.0
    second_half_slope: Any = 0.0
    # Stoppage time: Poisson(mean) minutes, truncated at the STOPPAGE_*_MAX constants.
    stoppage_first_mean: Any = 1.9
    stoppage_second_mean: Any = 4.2
    # Score-state effects (log multipliers of the side's goal rate), Dixon–Robinson.
    lead_effect: Any = 0.0
    trail_effect: Any = 0.0
    # Per goal already scored in the match (either side, capped at 6): a negative value
    # makes totals under-dispersed, as real league totals are (variance/mean ≈ 0.95).
    total_goals_effect: Any = 0.0
    # Game state on attacking volume: the trailing side's shot and corner rates are
    # multiplied by exp(+effect), the leading side's by exp(-effect).
    shot_state_effect: Any = 0.0
    # Red cards (log multipliers per red card: own side's rate, opponent's rate).
    red_self_effect: Any = math.log(0.67)
    red_opponent_effect: Any = math.log(1.25)
    # Match-level "openness": a shared log-normal factor on both sides' goal rates.
    openness_std: Any = 0.0
    # Momentum (pressure) per side: OU with per-minute reversion and stationary std.
    momentum_reversion: Any = 0.1
    momentum_std: Any = 0.3
    momentum_goal_loading: Any = 1.0
    momentum_shot_loading: Any = 1.0
    momentum_corner_loading: Any = 1.0
    # Share of corners won from shots (a blocked or saved shot going out): each non-goal
    # shot yields a corner with the probability that makes this share hold on average.
    corner_shot_share: Any = 0.3
    # Log corrections of the goal rates found by simulation (score/momentum effects shift
    # the mean away from the analytic normaliser); 0 before calibration.
    goal_scale_home: Any = 0.0
    goal_scale_away: Any = 0.0
    # Loading of the slate's shared latent factor (weather, congestion) on goal rates.
    shared_factor_loading: Any = 1.0
    # Derived by ``make_engine_params`` (do not set by hand):
    goal_exposure: Any = 90.0
    expected_duration: Any = 96.1
    stoppage_first_pmf: Any = None
    stoppage_second_pmf: Any = None


@struct.dataclass
class MatchParams:
    """Expected counts per match for one fixture, per side ``[home, away]``.

    Units: events per full match (regulation plus stoppage). ``shots`` include shots on
    target, which include goals (football-data's convention).
    """

    goals: Any
    shots: Any
    shots_on_target: Any
    corners: Any
    fouls: Any
    yellow_cards: Any
    red_cards: Any


ENGINE_RANGES: dict[str, tuple[float | None, float | None]] = {
    "first_half_slope": (-3.0, 3.0),
    "second_half_level": (-3.0, 3.0),
    "second_half_slope": (-3.0, 3.0),
    "stoppage_first_mean": (0.0, float(STOPPAGE_FIRST_MAX)),
    "stoppage_second_mean": (0.0, float(STOPPAGE_SECOND_MAX)),
    "lead_effect": (-2.0, 2.0),
    "trail_effect": (-2.0, 2.0),
    "total_goals_effect": (-1.0, 1.0),
    "shot_state_effect": (-1.0, 1.0),
    "red_self_effect": (-3.0, 3.0),
    "red_opponent_effect": (-3.0, 3.0),
    "openness_std": (0.0, 2.0),
    "momentum_reversion": (1e-3, 1.0),
    "momentum_std": (0.0, 3.0),
    "momentum_goal_loading": (-5.0, 5.0),
    "momentum_shot_loading": (-5.0, 5.0),
    "momentum_corner_loading": (-5.0, 5.0),
    "corner_shot_share": (0.0, 0.95),
    "goal_scale_home": (-2.0, 2.0),
    "goal_scale_away": (-2.0, 2.0),
    "shared_factor_loading": (-5.0, 5.0),
}


def truncated_poisson_pmf(mean: float, maximum: int) -> np.ndarray:
    """Probabilities of min(Poisson(mean), maximum) on 0..maximum; shape [maximum + 1]."""
    k = np.arange(maximum + 1)
    log_pmf = k * math.log(max(mean, 1e-12)) - mean - np.array([math.lgamma(i + 1) for i in k])
    pmf = np.exp(log_pmf)
    pmf[-1] += max(0.0, 1.0 - pmf.sum())
    return pmf / pmf.sum()


def goal_profile(minute_in_half: Any, second_half: Any, engine: EngineParams) -> Any:
    """Relative goal rate (unnormalised) at a minute of a half; minute_in_half in 1..45."""
    fraction = minute_in_half / 45.0
    first = engine.first_half_slope * fraction
    second = engine.second_half_level + engine.second_half_slope * fraction
    return jnp.exp(jnp.where(second_half, second, first))


def _derived(values: dict[str, float]) -> dict[str, Any]:
    """Normalisers: expected profile mass of a whole match and expected duration."""
    pmf_first = truncated_poisson_pmf(values["stoppage_first_mean"], STOPPAGE_FIRST_MAX)
    pmf_second = truncated_poisson_pmf(values["stoppage_second_mean"], STOPPAGE_SECOND_MAX)
    stoppage_first = float((pmf_first * np.arange(pmf_first.size)).sum())
    stoppage_second = float((pmf_second * np.arange(pmf_second.size)).sum())
    fraction = np.arange(1, 46) / 45.0
    first = np.exp(values["first_half_slope"] * fraction)
    second = np.exp(values["second_half_level"] + values["second_half_slope"] * fraction)
    # Stoppage minutes are played at the rate of the half's last regulation minute.
    exposure = (
        first.sum() + stoppage_first * first[-1] + second.sum() + stoppage_second * second[-1]
    )
    return {
        "goal_exposure": float(exposure),
        "expected_duration": 90.0 + stoppage_first + stoppage_second,
        "stoppage_first_pmf": jnp.asarray(pmf_first, dtype=jnp.float32),
        "stoppage_second_pmf": jnp.asarray(pmf_second, dtype=jnp.float32),
    }


def make_engine_params(**overrides: float) -> EngineParams:
    """Build validated ``EngineParams``; unknown or out-of-range fields raise ``ValueError``."""
    defaults = EngineParams()
    values: dict[str, float] = {}
    for name in ENGINE_RANGES:
        values[name] = float(getattr(defaults, name))
    for name, value in overrides.items():
        if name not in ENGINE_RANGES:
            raise ValueError(
                f"EngineParams: unknown field {name!r}; valid fields: {sorted(ENGINE_RANGES)}"
            )
        low, high = ENGINE_RANGES[name]
        require_range(f"EngineParams.{name}", value, low, high)
        values[name] = float(value)
    derived = _derived(values)
    fields: dict[str, Any] = {k: jnp.float32(v) for k, v in values.items()}
    fields.update({k: (jnp.float32(v) if isinstance(v, float) else v) for k, v in derived.items()})
    return EngineParams(**fields)


MATCH_FIELDS = (
    "goals",
    "shots",
    "shots_on_target",
    "corners",
    "fouls",
    "yellow_cards",
    "red_cards",
)


def make_match_params(
    goals: Any,
    shots: Any = (12.5, 10.5),
    shots_on_target: Any = (4.6, 3.8),
    corners: Any = (5.6, 4.6),
    fouls: Any = (10.5, 11.0),
    yellow_cards: Any = (1.7, 2.0),
    red_cards: Any = (0.05, 0.06),
) -> MatchParams:
    """Build validated ``MatchParams`` (expected counts per match, last axis [home, away]).

    Checks: every count finite and ≥ 0; goals ≤ shots on target ≤ shots (goals are a subset
    of shots on target, which are a subset of shots), elementwise.
    """
    arrays = {
        name: np.asarray(value, dtype=np.float64)
        for name, value in zip(
            MATCH_FIELDS,
            (goals, shots, shots_on_target, corners, fouls, yellow_cards, red_cards),
            strict=True,
        )
    }
    for name, array in arrays.items():
        if array.shape[-1:] != (2,):
            raise ValueError(
                f"MatchParams.{name}: expected last axis of size 2 (home, away), "
                f"got shape {array.shape}"
            )
        require_range(f"MatchParams.{name}", array, 0.0, 200.0)
    for small, large in (("goals", "shots_on_target"), ("shots_on_target", "shots")):
        bad = arrays[small] > arrays[large] + 1e-9
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"MatchParams.{small}: expected ≤ {large} (a subset of it), got "
                f"{arrays[small][index]:.3f} > {arrays[large][index]:.3f} at index {index}"
            )
    return MatchParams(**{k: jnp.asarray(v, dtype=jnp.float32) for k, v in arrays.items()})

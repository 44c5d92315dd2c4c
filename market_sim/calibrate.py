"""Fit the match engine to a league's real data and compare simulated with real statistics.

The fit has three layers, each from data, none tuned by hand to a league:

1. **Team rates** (per league, time-weighted): Dixon–Coles goals (attack, defence, home
   advantage, ρ) and log-linear Poisson rates per team for shots, shots on target,
   corners, fouls and yellow cards; red cards at the league's weighted home/away means.
2. **Goal timing** (pooled club goal minutes, ``../shared/data/goal-times``): the
   log-linear rise of the scoring rate within each half and the stoppage time implied by
   the goals the source folds into minutes 45 and 90.
3. **Engine structure** by the simulated method of moments (common random numbers,
   Levenberg–Marquardt on a finite-difference Jacobian): score-state effects
   (Dixon–Robinson), match openness, the second-half level, momentum scale and its
   loadings on goals and corners, and the goal-rate scale corrections. Targets are the
   fit seasons' real moments (draw share, home–away goal correlation, goals variance to
   mean, second-half share, shot dispersion, shots–goals and shots–corners correlations)
   and, for the scale corrections, the engine's own input rates (so the engine reproduces
   the Dixon–Coles expectations it is given).

The momentum reversion rate (per minute) is not identified by match totals; it stays at
its prior (``EngineParams.momentum_reversion``, 0.1/min: pressure spells of ~10 minutes).
The red-card effects are literature priors (Vecer et al. 2009), not fitted here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from market_sim import match
from market_sim.data import season_start_year
from market_sim.dixon_coles import (
    DEFAULT_XI,
    DixonColesFit,
    RatesFit,
    fit_dixon_coles,
    fit_league,
    fit_league_rates,
    predict_rates,
    score_matrix_from_rates,
    time_weights,
)
from market_sim.params import (
    EngineParams,
    MatchParams,
    make_engine_params,
    make_match_params,
)

#: Event columns fitted per team: engine field -> (home column, away column).
EVENT_COLUMNS: dict[str, tuple[str, str]] = {
    "shots": ("home_shots", "away_shots"),
    "shots_on_target": ("home_shots_on_target", "away_shots_on_target"),
    "corners": ("home_corners", "away_corners"),
    "fouls": ("home_fouls", "away_fouls"),
    "yellow_cards": ("home_yellow", "away_yellow"),
}

#: Engine fields fitted by simulated moments, with bounds and finite-difference steps.
SMM_PARAMETERS: dict[str, tuple[float, float, float]] = {
    "goal_scale_home": (-0.5, 0.5, 0.03),
    "goal_scale_away": (-0.5, 0.5, 0.03),
    "lead_effect": (-1.0, 0.8, 0.05),
    "trail_effect": (-0.8, 1.0, 0.05),
    "total_goals_effect": (-0.5, 0.3, 0.03),
    "shot_state_effect": (-0.5, 0.8, 0.05),
    "openness_std": (0.0, 0.7, 0.05),
    "second_half_level": (-0.5, 1.0, 0.03),
    "momentum_std": (0.0, 1.5, 0.05),
    "momentum_goal_loading": (0.0, 3.0, 0.1),
    "corner_shot_share": (0.0, 0.9, 0.05),
}

#: Moments matched by the SMM fit, with the scale that makes residuals comparable.
SMM_TARGETS: dict[str, float] = {
    "mean_goals_home": 0.03,
    "mean_goals_away": 0.03,
    "share_draw": 0.01,
    "corr_home_away_goals": 0.03,
    "goals_var_to_mean": 0.05,
    "share_goals_second_half": 0.01,
    "shots_var_to_mean": 0.1,
    "corr_shots_goals": 0.03,
    "corr_shots_corners": 0.03,
}


# --------------------------------------------------------------------------- goal timing


@dataclasses.dataclass(frozen=True)
class GoalTiming:
    """Within-half goal-rate profile and stoppage means fitted from goal minutes."""

    first_half_slope: float
    second_half_level: float
    second_half_slope: float
    stoppage_first_mean: float
    stoppage_second_mean: float
    share_86_plus: float
    share_second_half: float
    goals: int
    minute_counts: tuple[int, ...]  # goals per minute 1..90 (stoppage folded in 45/90)


def _poisson_loglinear(x: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """Poisson regression log E[count] = a + b·x by Newton's method; returns (a, b)."""
    a, b = math.log(max(counts.mean(), 1e-9)), 0.0
    design = np.stack([np.ones_like(x), x], axis=1)
    for _ in range(50):
        mean = np.exp(a + b * x)
        gradient = design.T @ (counts - mean)
        hessian = design.T @ (design * mean[:, None])
        delta = np.linalg.solve(hessian, gradient)
        a, b = a + delta[0], b + delta[1]
        if np.abs(delta).max() < 1e-10:
            break
    return float(a), float(b)


def fit_goal_timing(minutes: Sequence[int] | np.ndarray) -> GoalTiming:
    """Fit the goal-time profile from goal minutes 1..90 (stoppage folded into 45 and 90).

    Per half, log E[goals in minute t] = a_h + b_h·(t_in_half/45) is fitted by Poisson
    regression on the regulation minutes 1..44 and 46..89; the excess at 45 and 90 over
    the fitted rate there is the expected number of stoppage minutes (at that rate).
    """
    minutes = np.asarray(minutes, dtype=np.int64)
    if minutes.size == 0 or minutes.min() < 1 or minutes.max() > 90:
        raise ValueError("goal minutes: expected a non-empty array of integers in 1..90")
    counts = np.bincount(minutes, minlength=91)[1:].astype(np.float64)
    first_x = np.arange(1, 45) / 45.0
    second_x = np.arange(1, 45) / 45.0
    a1, b1 = _poisson_loglinear(first_x, counts[0:44])
    a2, b2 = _poisson_loglinear(second_x, counts[45:89])
    rate_45 = math.exp(a1 + b1)
    rate_90 = math.exp(a2 + b2)
    stoppage_first = max(counts[44] / rate_45 - 1.0, 0.0)
    stoppage_second = max(counts[89] / rate_90 - 1.0, 0.0)
    total = counts.sum()
    return GoalTiming(
        first_half_slope=b1,
        second_half_level=a2 - a1,
        second_half_slope=b2,
        stoppage_first_mean=stoppage_first,
        stoppage_second_mean=stoppage_second,
        share_86_plus=float(counts[85:].sum() / total),
        share_second_half=float(counts[45:].sum() / total),
        goals=int(total),
        minute_counts=tuple(int(c) for c in counts),
    )


# --------------------------------------------------------------------------- team rates


@dataclasses.dataclass(frozen=True)
class TeamRates:
    """Per-team fits of one league: goals (Dixon–Coles) and event counts (log-linear)."""

    teams: tuple[str, ...]
    goals: DixonColesFit
    events: dict[str, RatesFit]
    red_cards: tuple[float, float]  # league means per match (home, away)

    def index(self, names: Sequence[str]) -> np.ndarray:
        """Team indices; a team unseen in the fit maps to -1 (see ``match_params``)."""
        lookup = {name: i for i, name in enumerate(self.teams)}
        return np.array([lookup.get(name, -1) for name in names], dtype=np.int64)

    def newcomer_index(self) -> int:
        """Index of a pseudo-team for unseen (promoted) teams: see ``_with_newcomer``."""
        return len(self.teams)


def fit_team_rates(frame: pd.DataFrame, xi: float = DEFAULT_XI, l2: float = 0.0) -> TeamRates:
    """Fit per-team goal and event rates on a ``load_league`` frame (time-weighted).

    ``l2`` shrinks the Dixon–Coles attack/defence strengths toward the league mean (a
    Gaussian prior; see ``choose_shrinkage``).
    """
    goals_fit, teams = fit_league(frame, xi=xi, l2=l2)
    events = {}
    for field, (home_column, away_column) in EVENT_COLUMNS.items():
        events[field], _ = fit_league_rates(frame, home_column, away_column, xi=xi)
    weights = time_weights(frame["date"], None, xi)
    reds = (
        float(np.average(np.nan_to_num(frame["home_red"].to_numpy(float)), weights=weights)),
        float(np.average(np.nan_to_num(frame["away_red"].to_numpy(float)), weights=weights)),
    )
    return TeamRates(teams=tuple(teams), goals=goals_fit, events=events, red_cards=reds)


#: Candidate strengths of the Dixon–Coles prior for ``choose_shrinkage``.
SHRINKAGE_GRID = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0)


def choose_shrinkage(
    frame: pd.DataFrame, xi: float = DEFAULT_XI, grid: Sequence[float] = SHRINKAGE_GRID
) -> tuple[float, dict[float, float]]:
    """Pick the strength prior by forecasting the last fit season from the earlier ones.

    In-sample team strengths overstate the spread between teams (they fit noise), which
    a forecast should not inherit. For each ``l2`` in ``grid``, fit on every season but
    the last and score the last season's results by their mean Dixon–Coles
    log-likelihood; return the best ``l2`` and the scores. With one fit season, 0.
    """
    seasons = sorted(frame["season"].unique(), key=season_start_year)
    if len(seasons) < 2:
        return 0.0, {}
    train = frame[frame["season"] != seasons[-1]]
    held_out = frame[frame["season"] == seasons[-1]]
    scores: dict[float, float] = {}
    for l2 in grid:
        fit, teams = fit_league(train, xi=xi, l2=l2)
        rates = TeamRates(teams=tuple(teams), goals=fit, events={}, red_cards=(0.0, 0.0))
        goals = _goal_rates(rates, held_out["home_team"], held_out["away_team"])
        matrix = np.asarray(score_matrix_from_rates(goals[:, 0], goals[:, 1], fit.rho, 15))
        x = np.minimum(held_out["home_goals"].to_numpy(int), 15)
        y = np.minimum(held_out["away_goals"].to_numpy(int), 15)
        probability = matrix[np.arange(x.size), x, y]
        scores[float(l2)] = float(np.log(np.maximum(probability, 1e-12)).mean())
    return max(scores, key=lambda l2: scores[l2]), scores


def _index_with_newcomer(rates: TeamRates, names: Sequence[str]) -> np.ndarray:
    index = rates.index(names)
    return np.where(index < 0, rates.newcomer_index(), index)


def _with_newcomer(strength_for: np.ndarray, strength_against: np.ndarray) -> tuple[Any, Any]:
    """Append a pseudo-team for teams unseen in the fit (promoted or new).

    It gets the mean strengths of the three weakest teams by net strength (for minus
    against): promoted teams replace relegated ones, who are typically the weakest.
    """
    net = strength_for - strength_against
    weakest = np.argsort(net)[: min(3, net.size)]
    return (
        np.append(strength_for, strength_for[weakest].mean()),
        np.append(strength_against, strength_against[weakest].mean()),
    )


def _goal_rates(
    rates: TeamRates, home_teams: Sequence[str], away_teams: Sequence[str]
) -> np.ndarray:
    """Dixon–Coles expected goals per fixture [n, 2]; unseen teams get the newcomer."""
    home = _index_with_newcomer(rates, home_teams)
    away = _index_with_newcomer(rates, away_teams)
    attack, defence = _with_newcomer(
        np.asarray(rates.goals.attack), np.asarray(rates.goals.defence)
    )
    goals_fit = dataclasses.replace(rates.goals, attack=attack, defence=defence)
    home_rate, away_rate = predict_rates(goals_fit, home, away)
    return np.stack([np.asarray(home_rate), np.asarray(away_rate)], axis=1)


def predict_fixture_rates(
    rates: TeamRates, home_teams: Sequence[str], away_teams: Sequence[str]
) -> dict[str, np.ndarray]:
    """Expected counts per fixture and side: field -> [n, 2] (home, away)."""
    home = _index_with_newcomer(rates, home_teams)
    away = _index_with_newcomer(rates, away_teams)
    out: dict[str, np.ndarray] = {"goals": _goal_rates(rates, home_teams, away_teams)}
    for field, fit in rates.events.items():
        strength_for, strength_against = _with_newcomer(
            np.asarray(fit.for_strength), np.asarray(fit.against_strength)
        )
        home_rate, away_rate = predict_rates(
            dataclasses.replace(fit, for_strength=strength_for, against_strength=strength_against),
            home,
            away,
        )
        out[field] = np.stack([np.asarray(home_rate), np.asarray(away_rate)], axis=1)
    out["red_cards"] = np.tile(np.asarray(rates.red_cards), (home.size, 1))
    # Goals are shots on target, which are shots: keep the nesting of expectations.
    out["shots_on_target"] = np.maximum(out["shots_on_target"], out["goals"] * 1.05)
    out["shots"] = np.maximum(out["shots"], out["shots_on_target"] * 1.05)
    return out


def fixture_match_params(rates: dict[str, np.ndarray]) -> MatchParams:
    """``MatchParams`` for a batch of fixtures from ``predict_fixture_rates`` output."""
    return make_match_params(**rates)


# --------------------------------------------------------------------------- statistics


def real_statistics(frame: pd.DataFrame, share_86_plus: float) -> dict[str, float]:
    """Real per-match statistics of a ``load_league`` frame (see ``statistics_from_counts``)."""
    counts = {
        "home_goals": frame["home_goals"].to_numpy(float),
        "away_goals": frame["away_goals"].to_numpy(float),
        "second_half_goals": (
            frame["home_goals"]
            + frame["away_goals"]
            - frame["ht_home_goals"]
            - frame["ht_away_goals"]
        ).to_numpy(float),
    }
    for field, (home_column, away_column) in {
        **EVENT_COLUMNS,
        "red_cards": ("home_red", "away_red"),
    }.items():
        counts[f"home_{field}"] = frame[home_column].to_numpy(float)
        counts[f"away_{field}"] = frame[away_column].to_numpy(float)
    stats = statistics_from_counts(counts)
    stats["share_goals_minute_86_plus"] = share_86_plus
    return stats


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    keep = np.isfinite(x) & np.isfinite(y)
    return float(np.corrcoef(x[keep], y[keep])[0, 1])


def statistics_from_counts(counts: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-match statistics from per-match count arrays (NaN-aware for event columns).

    Keys of ``counts``: ``home_goals``, ``away_goals``, ``second_half_goals`` and, for each
    event field, ``home_<field>``/``away_<field>``; optionally ``goals_86_plus``.
    """
    home, away = counts["home_goals"], counts["away_goals"]
    total = home + away
    stats: dict[str, float] = {
        "goals_home": float(home.mean()),
        "goals_away": float(away.mean()),
        "goals_total": float(total.mean()),
        "share_home_win": float((home > away).mean()),
        "share_draw": float((home == away).mean()),
        "share_away_win": float((home < away).mean()),
        "share_goals_second_half": float(np.nansum(counts["second_half_goals"]) / total.sum()),
        "goals_var_to_mean": float(total.var() / total.mean()),
        "corr_home_away_goals": _corr(home, away),
    }
    if "goals_86_plus" in counts:
        stats["share_goals_minute_86_plus"] = float(counts["goals_86_plus"].sum() / total.sum())
    for field in (*EVENT_COLUMNS, "red_cards"):
        both = counts[f"home_{field}"] + counts[f"away_{field}"]
        stats[field] = float(np.nanmean(both))
    # Moments used by the structural fit (per side, pooled over home and away).
    shots = np.concatenate([counts["home_shots"], counts["away_shots"]])
    goals = np.concatenate([home, away])
    corners = np.concatenate([counts["home_corners"], counts["away_corners"]])
    stats["shots_var_to_mean"] = float(np.nanvar(shots) / np.nanmean(shots))
    stats["corr_shots_goals"] = _corr(shots, goals)
    stats["corr_shots_corners"] = _corr(shots, corners)
    stats["mean_goals_home"] = stats["goals_home"]
    stats["mean_goals_away"] = stats["goals_away"]
    return stats


# --------------------------------------------------------------------------- simulation


def _simulate_counts_impl(
    key: jax.Array, params: MatchParams, engine: EngineParams
) -> dict[str, Any]:
    state, events = match.simulate_batch(key, params, engine)
    goals = events.goals.sum(-1)  # [B, T]
    second_half = events.period == 2
    late = second_half & (events.minute >= 86)
    # Goal minute as the goal-times source records it: stoppage folded into 45 and 90.
    minute_index = jnp.clip(events.minute, 1, 90) - 1
    histogram = jnp.zeros(90, jnp.float32).at[minute_index.ravel()].add(goals.ravel())
    out = {
        "home_goals": state.score[:, 0],
        "away_goals": state.score[:, 1],
        "second_half_goals": (goals * second_half).sum(1),
        "goals_86_plus": (goals * late).sum(1),
        "minute_histogram": histogram,
    }
    for field in (*EVENT_COLUMNS, "red_cards"):
        value = getattr(state, field)
        out[f"home_{field}"] = value[:, 0]
        out[f"away_{field}"] = value[:, 1]
    return out


_simulate_counts = jax.jit(_simulate_counts_impl)
# Many engines on the same fixtures and random numbers (common random numbers).
_simulate_counts_many = jax.jit(jax.vmap(_simulate_counts_impl, in_axes=(None, None, 0)))


def simulate_counts(
    key: jax.Array, params: MatchParams, engine: EngineParams, replications: int = 1
) -> dict[str, np.ndarray]:
    """Simulate every fixture ``replications`` times; per-match count arrays (float64)."""
    tiled = jax.tree.map(lambda x: jnp.tile(x, (replications, 1)), params)
    raw = _simulate_counts(key, tiled, engine)
    return {k: np.asarray(v, dtype=np.float64) for k, v in raw.items()}


def simulate_counts_many(
    key: jax.Array, params: MatchParams, engines: Sequence[EngineParams], replications: int = 1
) -> list[dict[str, np.ndarray]]:
    """``simulate_counts`` for several engines in one batched call, same random numbers."""
    tiled = jax.tree.map(lambda x: jnp.tile(x, (replications, 1)), params)
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *engines)
    raw = _simulate_counts_many(key, tiled, stacked)
    return [
        {k: np.asarray(v[i], dtype=np.float64) for k, v in raw.items()} for i in range(len(engines))
    ]


# --------------------------------------------------------------------------- structural fit


@dataclasses.dataclass(frozen=True)
class StructuralFit:
    """Result of the simulated-moments fit of the engine's structural parameters."""

    values: dict[str, float]
    targets: dict[str, float]
    achieved: dict[str, float]
    iterations: int
    converged: bool


def engine_from(timing: GoalTiming, values: dict[str, float] | None = None) -> EngineParams:
    """``EngineParams`` from a goal timing fit plus structural values (overrides)."""
    base = {
        "first_half_slope": timing.first_half_slope,
        "second_half_level": timing.second_half_level,
        "second_half_slope": timing.second_half_slope,
        "stoppage_first_mean": timing.stoppage_first_mean,
        "stoppage_second_mean": timing.stoppage_second_mean,
    }
    base.update(values or {})
    return make_engine_params(**base)


def fit_structure(
    params: MatchParams,
    targets: dict[str, float],
    timing: GoalTiming,
    *,
    key: jax.Array,
    replications: int = 8,
    max_iterations: int = 8,
    start: dict[str, float] | None = None,
) -> StructuralFit:
    """Levenberg–Marquardt on simulated moments (common random numbers) for ``SMM_PARAMETERS``.

    ``targets`` must hold every key of ``SMM_TARGETS``. Residuals are divided by the
    target scales of ``SMM_TARGETS``; the fit stops when every scaled residual is below
    0.5 or after ``max_iterations`` Jacobian evaluations.
    """
    names = list(SMM_PARAMETERS)
    low = np.array([SMM_PARAMETERS[n][0] for n in names])
    high = np.array([SMM_PARAMETERS[n][1] for n in names])
    steps = np.array([SMM_PARAMETERS[n][2] for n in names])
    start_values = {
        "goal_scale_home": 0.0,
        "goal_scale_away": 0.0,
        "lead_effect": -0.1,
        "trail_effect": 0.1,
        "total_goals_effect": 0.0,
        "shot_state_effect": 0.1,
        "openness_std": 0.1,
        "second_half_level": timing.second_half_level,
        "momentum_std": 0.3,
        "momentum_goal_loading": 0.5,
        "corner_shot_share": 0.3,
        **(start or {}),
    }
    theta = np.clip(np.array([start_values[n] for n in names]), low, high)
    target_names = list(SMM_TARGETS)
    target = np.array([targets[n] for n in target_names])
    scale = np.array([SMM_TARGETS[n] for n in target_names])

    def residuals(candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
        engines = [
            engine_from(timing, dict(zip(names, values.tolist(), strict=True)))
            for values in candidates
        ]
        out = []
        for counts in simulate_counts_many(key, params, engines, replications):
            stats = statistics_from_counts(counts)
            out.append((np.array([stats[n] for n in target_names]) - target) / scale)
        return out

    def residual(values: np.ndarray) -> np.ndarray:
        return residuals([values])[0]

    current = residual(theta)
    damping = 1e-2
    iterations = 0
    while iterations < max_iterations and np.abs(current).max() >= 0.5:
        iterations += 1
        # Step inward at the upper bound so every probe stays feasible.
        signed_steps = np.where(theta + steps <= high, steps, -steps)
        probes = [theta + signed_steps[j] * np.eye(theta.size)[j] for j in range(theta.size)]
        jacobian = np.stack(
            [(r - current) / signed_steps[j] for j, r in enumerate(residuals(probes))], axis=1
        )
        for _ in range(6):
            normal = jacobian.T @ jacobian
            lhs = normal + damping * np.diag(np.diag(normal) + 1e-6)
            proposal = np.clip(theta - np.linalg.solve(lhs, jacobian.T @ current), low, high)
            trial = residual(proposal)
            if (trial**2).sum() < (current**2).sum():
                theta, current = proposal, trial
                damping = max(damping / 3.0, 1e-4)
                break
            damping *= 4.0
    achieved = dict(zip(target_names, (current * scale + target).tolist(), strict=True))
    return StructuralFit(
        values=dict(zip(names, theta.tolist(), strict=True)),
        targets=dict(zip(target_names, target.tolist(), strict=True)),
        achieved=achieved,
        iterations=iterations,
        converged=bool(np.abs(current).max() < 1.0),
    )


# --------------------------------------------------------------------------- whole league


@dataclasses.dataclass(frozen=True)
class LeagueCalibration:
    """Everything fitted for one league: team rates, goal timing, engine structure."""

    league: str
    fit_seasons: tuple[str, ...]
    rates: TeamRates
    timing: GoalTiming
    structure: StructuralFit
    engine: EngineParams

    def match_params(self, home_teams: Sequence[str], away_teams: Sequence[str]) -> MatchParams:
        """Batched ``MatchParams`` for fixtures (unseen teams get the newcomer strength)."""
        return fixture_match_params(predict_fixture_rates(self.rates, home_teams, away_teams))


def fit_league_calibration(
    frame: pd.DataFrame,
    timing: GoalTiming,
    *,
    league: str,
    xi: float = DEFAULT_XI,
    key: jax.Array | None = None,
    replications: int = 8,
    l2: float = 0.0,
    max_iterations: int = 8,
) -> LeagueCalibration:
    """Fit team rates, then the engine structure, on the fit seasons' ``frame``."""
    key = jax.random.PRNGKey(0) if key is None else key
    rates = fit_team_rates(frame, xi=xi, l2=l2)
    fixture_rates = predict_fixture_rates(rates, frame["home_team"], frame["away_team"])
    params = fixture_match_params(fixture_rates)
    real = real_statistics(frame, timing.share_86_plus)
    targets = {name: real[name] for name in SMM_TARGETS}
    # The scale corrections make the engine reproduce its input expectations.
    targets["mean_goals_home"] = float(fixture_rates["goals"][:, 0].mean())
    targets["mean_goals_away"] = float(fixture_rates["goals"][:, 1].mean())
    structure = fit_structure(
        params,
        targets,
        timing,
        key=key,
        replications=replications,
        max_iterations=max_iterations,
    )
    return LeagueCalibration(
        league=league,
        fit_seasons=tuple(sorted(frame["season"].unique())),
        rates=rates,
        timing=timing,
        structure=structure,
        engine=engine_from(timing, structure.values),
    )


def simulated_rho(
    calibration: LeagueCalibration,
    frame: pd.DataFrame,
    counts: dict[str, np.ndarray],
    replications: int,
) -> float:
    """Dixon–Coles ρ fitted to simulated scores of ``frame``'s fixtures (all replications)."""
    teams = sorted(set(frame["home_team"]) | set(frame["away_team"]))
    lookup = {team: i for i, team in enumerate(teams)}
    home = np.tile(frame["home_team"].map(lookup).to_numpy(), replications)
    away = np.tile(frame["away_team"].map(lookup).to_numpy(), replications)
    fit = fit_dixon_coles(
        home, away, counts["home_goals"], counts["away_goals"], np.ones(home.size), len(teams)
    )
    return float(fit.rho)

"""Market statistics of real closing odds and of the simulated market, and the profile fit.

Statistics (one league's test seasons; sharp = Pinnacle, soft = Bet365; 1X2 unless noted):

- ``overround``: mean Σ 1/odds − 1 of the closing prices;
- ``shin_z_median``: median Shin z of the closing prices;
- ``rps_closing``: mean ranked probability score of the Shin-de-margined closing prices on
  the outcomes (real prices on real results; simulated prices on simulated results);
- ``price_drift``: mean |Δ implied probability| (multiplicative de-margining, all three
  outcomes) from the pre-match snapshot to the close;
- ``flb_roi``: flat-stake ROI of backing every outcome at the soft book's closing odds,
  by raw implied-probability bucket (``FLB_BUCKETS``), with a bootstrap 95 % interval
  over matches for the real data.

The simulation plays the test seasons' real fixtures (team rates of a ``LeagueModel``),
``replications`` times each, in slates of ``n_matches``, through the whole market with
no stakes of ours (``simulate_fixtures``). ``fit_profile`` solves the bookmaker's belief
noise so the simulated ``rps_closing`` matches the real one, then its news noise so the
simulated ``price_drift`` matches (two 1-D root finds with common random numbers); the
overround targets are the real mean overrounds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from market_sim import market
from market_sim.league_model import LeagueModel
from market_sim.margin import implied_probabilities, shin_z
from market_sim.regimes import Regime, market_params, with_profile

#: Raw implied-probability buckets of the favourite–longshot-bias curve (edges).
FLB_BUCKETS: tuple[float, ...] = (0.0, 0.15, 0.25, 0.35, 0.5, 0.65, 1.0)
#: football-data column stems of the two books.
BOOK_COLUMNS = {"sharp": "pinnacle", "soft": "b365"}


@dataclasses.dataclass(frozen=True)
class MarketSample:
    """Odds and outcomes of many matches: snapshot/closing 1X2 odds [N, 3], result [N]
    (0 home, 1 draw, 2 away) and a match id [N] (bootstrap unit)."""

    snapshot: np.ndarray
    closing: np.ndarray
    result: np.ndarray
    match_id: np.ndarray


def real_sample(frame: pd.DataFrame, book: str) -> MarketSample:
    """The matches of ``frame`` with complete snapshot and closing 1X2 odds of ``book``."""
    stem = BOOK_COLUMNS[book]
    sides = ("home", "draw", "away")
    closing = frame[[f"odds_{stem}_close_{s}" for s in sides]].to_numpy(float)
    snapshot = frame[[f"odds_{stem}_{s}" for s in sides]].to_numpy(float)
    ok = np.isfinite(closing).all(1) & np.isfinite(snapshot).all(1)
    if not ok.any():
        raise ValueError(f"no match with {stem} snapshot and closing 1X2 odds in the frame")
    home, away = frame["home_goals"].to_numpy()[ok], frame["away_goals"].to_numpy()[ok]
    result = np.select([home > away, home == away], [0, 1], 2)
    return MarketSample(snapshot[ok], closing[ok], result, np.flatnonzero(ok))


def ranked_probability_score(probabilities: np.ndarray, result: np.ndarray) -> np.ndarray:
    """RPS of ordered 3-way forecasts [N, 3] against results [N] (0/1/2), per match."""
    observed = np.eye(3)[result]
    gap = np.cumsum(probabilities, 1)[:, :2] - np.cumsum(observed, 1)[:, :2]
    return (gap**2).sum(1) / 2.0


def flat_stake_returns(odds: np.ndarray, result: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(raw implied probability, return of a unit back bet), both [N * 3]."""
    won = np.eye(3)[result]
    return (1.0 / odds).ravel(), (odds * won - 1.0).ravel()


def sample_statistics(sample: MarketSample) -> dict[str, float]:
    """Overround, Shin z median, RPS and price drift of a sample."""
    closing = implied_probabilities(jnp.asarray(sample.closing), "shin")
    drift = np.abs(
        np.asarray(implied_probabilities(jnp.asarray(sample.closing)))
        - np.asarray(implied_probabilities(jnp.asarray(sample.snapshot)))
    )
    return {
        "overround": float(((1.0 / sample.closing).sum(1) - 1.0).mean()),
        "shin_z_median": float(np.median(np.asarray(shin_z(jnp.asarray(sample.closing))))),
        "rps_closing": float(ranked_probability_score(np.asarray(closing), sample.result).mean()),
        "price_drift": float(drift.mean()),
    }


def flb_roi(
    sample: MarketSample, bootstrap: int = 0, seed: int = 0
) -> list[tuple[float, float, float]]:
    """(ROI, low, high) per ``FLB_BUCKETS`` bucket; the interval is a match bootstrap 95 %
    (``bootstrap`` resamples; 0 = no interval, low = high = ROI)."""
    implied, returns = flat_stake_returns(sample.closing, sample.result)
    bucket = np.digitize(implied, FLB_BUCKETS[1:-1])
    rows = []
    rng = np.random.default_rng(seed)
    n = sample.closing.shape[0]
    for k in range(len(FLB_BUCKETS) - 1):
        mask = (bucket == k).reshape(n, 3)
        per_match_sum = np.where(mask, returns.reshape(n, 3), 0.0).sum(1)
        per_match_count = mask.sum(1)
        roi = per_match_sum.sum() / max(per_match_count.sum(), 1)
        if bootstrap:
            draws = rng.integers(0, n, size=(bootstrap, n))
            rois = per_match_sum[draws].sum(1) / np.maximum(per_match_count[draws].sum(1), 1)
            low, high = np.quantile(rois, [0.025, 0.975])
        else:
            low = high = roi
        rows.append((float(roi), float(low), float(high)))
    return rows


# ------------------------------------------------------------------------- simulation


def fixture_indices(model: LeagueModel, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Team indices of ``frame``'s fixtures in ``model`` (error names an unknown team)."""
    home = np.asarray([model.team_index(t) for t in frame["home_team"]])
    away = np.asarray([model.team_index(t) for t in frame["away_team"]])
    return home, away


def _slates(
    home: np.ndarray, away: np.ndarray, goals: np.ndarray, n_matches: int, replications: int
) -> Any:
    """Fixtures tiled ``replications`` times and padded into slates [S, M] (goals [S, M, 2])."""
    home = np.tile(home, replications)
    away = np.tile(away, replications)
    goals = np.tile(goals, (replications, 1))
    count = home.size
    pad = (-count) % n_matches
    home = np.concatenate([home, home[:pad]]).reshape(-1, n_matches)
    away = np.concatenate([away, away[:pad]]).reshape(-1, n_matches)
    goals = np.concatenate([goals, goals[:pad]]).reshape(-1, n_matches, 2)
    return jnp.asarray(home), jnp.asarray(away), jnp.asarray(goals, jnp.float32), count


def _simulate(params: market.MarketParams, ticks: int) -> Callable[..., Any]:
    zeros = jnp.zeros((params.n_matches, 5), jnp.float32)

    def one(key: jax.Array, home: Any, away: Any, goals: Any) -> Any:
        key_reset, key_steps = jax.random.split(key)
        state = market.reset_with_fixtures(key_reset, params, home, away, goals=goals)

        def body(carry: Any, step_key: jax.Array) -> Any:
            carry, _ = market.step(step_key, carry, zeros, params)
            return carry, None

        state, _ = jax.lax.scan(body, state, jax.random.split(key_steps, ticks))
        return state.snapshot_odds, state.closing_odds, state.match.score

    return jax.jit(jax.vmap(one))


def simulate_fixtures(
    key: jax.Array,
    model: LeagueModel,
    regime: Regime,
    home: np.ndarray,
    away: np.ndarray,
    replications: int,
    *,
    goals: np.ndarray | None = None,
    n_matches: int = 10,
    pre_match_only: bool = False,
) -> MarketSample:
    """Play fixtures (team indices [N]) through the market with no stakes of ours,
    ``replications`` times; 1X2 snapshot/closing odds and results. ``goals`` [N, 2]
    overrides the model's expected goals (default: the model's, with the regime's
    ``goal_spread``). ``pre_match_only`` stops at the close (results are then meaningless)."""
    params = market_params(model, regime, n_matches=n_matches)
    if goals is None:
        goals = np.asarray(
            market.fixture_goals(params, jnp.asarray(home), jnp.asarray(away)), np.float32
        )
    home_slates, away_slates, goal_slates, count = _slates(
        home, away, goals, n_matches, replications
    )
    ticks = params.pre_match_ticks if pre_match_only else market.episode_ticks(params)
    keys = jax.random.split(key, home_slates.shape[0])
    snapshot, closing, score = _simulate(params, ticks)(keys, home_slates, away_slates, goal_slates)
    score = np.asarray(score).reshape(-1, 2)[:count]
    result = np.select([score[:, 0] > score[:, 1], score[:, 0] == score[:, 1]], [0, 1], 2)
    return MarketSample(
        np.asarray(snapshot)[..., :3].reshape(-1, 3)[:count],
        np.asarray(closing)[..., :3].reshape(-1, 3)[:count],
        result,
        np.arange(count) % home.size,
    )


def _bisect(
    function: Callable[[float], float], target: float, low: float, high: float, steps: int
) -> float:
    """x in [low, high] with function(x) ≈ target for a monotone ``function`` (bisection;
    the end of the bracket if the target is out of reach)."""
    increasing = function(high) > function(low)
    for _ in range(steps):
        middle = 0.5 * (low + high)
        if (function(middle) < target) == increasing:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def fit_profile(
    key: jax.Array,
    model: LeagueModel,
    regime: Regime,
    home: np.ndarray,
    away: np.ndarray,
    real: dict[str, float],
    replications: int,
    steps: int = 6,
) -> Regime:
    """``regime`` fitted to a league's real sharp-book statistics ``real``.

    overround_1x2 = the real mean; ``goal_spread`` so that the simulated ``rps_closing``
    matches (the bookmaker's belief noise is the profile's); then ``news_noise`` so that
    ``price_drift`` matches. Common random numbers (one ``key``) keep the 1-D functions
    smooth; outcomes do not depend on the news noise, so that solve replays only the
    pre-match ticks.
    """
    regime = dataclasses.replace(regime, overround_1x2=round(real["overround"], 4))

    def rps(spread: float) -> float:
        candidate = dataclasses.replace(regime, goal_spread=spread)
        sample = simulate_fixtures(key, model, candidate, home, away, replications)
        return sample_statistics(sample)["rps_closing"]

    spread = _bisect(rps, real["rps_closing"], 0.8, 2.2, steps)
    regime = dataclasses.replace(regime, goal_spread=round(spread, 4))
    results = simulate_fixtures(key, model, regime, home, away, replications).result

    def drift(news: float) -> float:
        candidate = dataclasses.replace(regime, news_noise=news)
        sample = simulate_fixtures(
            key, model, candidate, home, away, replications, pre_match_only=True
        )
        return sample_statistics(dataclasses.replace(sample, result=results))["price_drift"]

    news = _bisect(drift, real["price_drift"], 0.0, 0.3, steps)
    return dataclasses.replace(regime, news_noise=round(news, 4))


# ------------------------------------------------------------------------------ rows

#: Tolerances of the market statistics (kind, value).
TOLERANCES: dict[str, tuple[str, float]] = {
    "overround": ("absolute", 0.005),
    "rps_closing": ("absolute", 0.005),
    "shin_z_median": ("absolute", 0.005),
    "price_drift": ("relative", 0.25),
}


def _row(real: float, sim: float, kind: str, tolerance: float) -> dict[str, Any]:
    abs_err = abs(sim - real)
    rel_err = abs_err / abs(real) if real else float("inf")
    error = abs_err if kind == "absolute" else rel_err
    return {
        "real": float(real),
        "sim": float(sim),
        "abs_err": float(abs_err),
        "rel_err": float(rel_err),
        "tolerance": float(tolerance),
        "tolerance_kind": kind,
        "pass": bool(error <= tolerance),
    }


def market_rows(
    frame: pd.DataFrame,
    model: LeagueModel,
    regime: Regime,
    key: jax.Array,
    *,
    replications: int = 10,
    fit: bool = True,
    bootstrap: int = 1000,
) -> tuple[dict[str, dict[str, Any]], dict[str, Regime]]:
    """Market statistics rows (real vs sim) of a league's test-season ``frame``.

    The sharp rows compare ``regime`` with the sharp profile against Pinnacle, the soft
    rows ``regime`` with the soft profile against Bet365; ``fit`` first fits both
    (``fit_profile``; the soft book shares the fitted goal spread and news noise and
    takes Bet365's mean overround). Rows: ``overround_sharp``/``_soft``,
    ``shin_z_median_sharp``/``_soft``, ``rps_closing`` (sharp), ``rps_closing_soft``,
    ``price_drift`` (sharp), ``price_drift_soft``, ``flb_roi_bucket_{0..5}`` (soft; pass
    when the simulated ROI lies in the real bootstrap 95 % interval, given as
    ``real_low``/``real_high``; ``tolerance`` is the interval's larger half-width).
    Returns (rows, the regimes used per book).
    """
    home, away = fixture_indices(model, frame)
    real = {book: real_sample(frame, book) for book in ("sharp", "soft")}
    real_stats = {book: sample_statistics(sample) for book, sample in real.items()}
    regimes = {book: with_profile(regime, book) for book in ("sharp", "soft")}
    if fit:
        sharp = fit_profile(
            key, model, regimes["sharp"], home, away, real_stats["sharp"], replications
        )
        regimes["sharp"] = sharp
        regimes["soft"] = dataclasses.replace(
            regimes["soft"],
            goal_spread=sharp.goal_spread,
            news_noise=sharp.news_noise,
            overround_1x2=round(real_stats["soft"]["overround"], 4),
        )
    sims = {
        book: simulate_fixtures(key, model, regimes[book], home, away, replications)
        for book in ("sharp", "soft")
    }
    rows: dict[str, dict[str, Any]] = {}
    for book in ("sharp", "soft"):
        sim_stats = sample_statistics(sims[book])
        for name, (kind, tolerance) in TOLERANCES.items():
            label = f"{name}_{book}" if name in ("overround", "shin_z_median") else name
            label = label if book == "sharp" or label.endswith("_soft") else f"{label}_soft"
            rows[label] = _row(real_stats[book][name], sim_stats[name], kind, tolerance)
    real_flb = flb_roi(real["soft"], bootstrap)
    sim_flb = flb_roi(sims["soft"])
    for k, ((roi, low, high), (sim_roi, _, _)) in enumerate(zip(real_flb, sim_flb, strict=True)):
        row = _row(roi, sim_roi, "absolute", max(roi - low, high - roi))
        row["pass"] = bool(low <= sim_roi <= high)
        row["real_low"], row["real_high"] = low, high
        rows[f"flb_roi_bucket_{k}"] = row
    return rows, regimes

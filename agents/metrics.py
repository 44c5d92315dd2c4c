"""Metrics of an evaluation: per seed, then mean and 95% bootstrap intervals over seeds.

Units: ``log_growth`` is the mean log of (end equity / start bankroll) per round (slate);
``roi`` = P&L / staked; ``turnover`` = staked per round / bankroll; ``hit_rate`` = share of
bet selections that won; ``max_drawdown`` = largest fall from a peak of the seed's
compounded equity path (intra-slate ticks included), a fraction; ``sharpe`` and
``sortino`` = mean / (std, downside deviation) of per-round log-growth (not annualised);
``var95``/``cvar95`` = loss (positive) of per-round simple return at the 5% quantile and
the mean loss beyond it; ``clv`` = stake-weighted closing-line value of pre-match bets,
executed odds / closing odds − 1; ``cap_utilisation`` = mean open exposure / Hard-Cap;
``value_share``/``hunting_share``/``recovery_share`` = bet-type mix of the staked amount
(SPEC §9). A metric undefined for a seed (no bets: hit rate, CLV) is left out of the
seed average; if no seed defines it, it is ``None``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.evaluation import Trajectories

METRIC_NAMES = (
    "log_growth",
    "roi",
    "turnover",
    "hit_rate",
    "max_drawdown",
    "sharpe",
    "sortino",
    "var95",
    "cvar95",
    "clv",
    "cap_utilisation",
    "value_share",
    "hunting_share",
    "recovery_share",
)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else float("nan")


def _max_drawdown(paths: np.ndarray) -> float:
    """Max drawdown of a chain of per-round equity paths [R, T+1] (each starts at 1)."""
    wealth = []
    level = 1.0
    for path in paths:
        wealth.append(level * path)
        level *= path[-1]
    chain = np.concatenate(wealth)
    peaks = np.maximum.accumulate(chain)
    return float(np.max(1.0 - chain / peaks))


def per_seed(trajectories: Trajectories) -> dict[str, np.ndarray]:
    """Every metric of ``METRIC_NAMES`` per seed [S] (NaN where undefined)."""
    t = trajectories
    seeds, rounds = len(t.seeds), t.rounds
    relative = t.equity / t.bankroll  # [E, T+1]
    growth = np.log(np.maximum(relative[:, -1], 1e-12))
    staked = t.fills.sum(axis=(1, 2, 3))
    pnl = (relative[:, -1] - 1.0) * t.bankroll
    bet = t.fills.sum(axis=1) > 0  # [E, M, 5]
    hits = (bet & (t.won > 0)).sum(axis=(1, 2))
    bets = bet.sum(axis=(1, 2))
    pre_fills = t.fills * t.pre_match[:, :, None, None]
    clv_num = (pre_fills * (t.executed_odds / t.closing_odds[:, None] - 1.0)).sum(axis=(1, 2, 3))
    clv_den = pre_fills.sum(axis=(1, 2, 3))
    utilisation = (t.exposure / np.maximum(t.hard_cap, 1e-9)).mean(axis=1)
    type_stake = [(t.fills * (t.bet_types == k)).sum(axis=(1, 2, 3)) for k in (1, 2, 3)]

    out: dict[str, list[float]] = {name: [] for name in METRIC_NAMES}
    for s in range(seeds):
        rows = slice(s * rounds, (s + 1) * rounds)
        g = growth[rows]
        simple = np.expm1(g)
        out["log_growth"].append(float(g.mean()))
        out["roi"].append(_ratio(pnl[rows].sum(), staked[rows].sum()))
        out["turnover"].append(float(staked[rows].mean() / t.bankroll))
        out["hit_rate"].append(_ratio(hits[rows].sum(), bets[rows].sum()))
        out["max_drawdown"].append(_max_drawdown(relative[rows]))
        std = float(g.std(ddof=1)) if rounds > 1 else 0.0
        out["sharpe"].append(float(g.mean() / std) if std > 0 else 0.0)
        downside = float(np.sqrt(np.mean(np.minimum(g, 0.0) ** 2)))
        out["sortino"].append(float(g.mean() / downside) if downside > 0 else 0.0)
        quantile = float(np.quantile(simple, 0.05))
        out["var95"].append(-quantile)
        out["cvar95"].append(float(-simple[simple <= quantile].mean()))
        out["clv"].append(_ratio(clv_num[rows].sum(), clv_den[rows].sum()))
        out["cap_utilisation"].append(float(utilisation[rows].mean()))
        total = sum(stake[rows].sum() for stake in type_stake)
        for name, stake in zip(
            ("value_share", "hunting_share", "recovery_share"), type_stake, strict=True
        ):
            out[name].append(_ratio(stake[rows].sum(), total))
    return {name: np.asarray(values) for name, values in out.items()}


def bootstrap_mean(values: np.ndarray, samples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Mean over seeds and its 95% percentile-bootstrap interval (NaN seeds dropped)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"mean": None, "ci95": [None, None], "n": 0}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, (samples, values.size))
    means = values[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(values.mean()), "ci95": [float(low), float(high)], "n": int(values.size)}


def summarise(per_seed_metrics: dict[str, np.ndarray], samples: int = 2000) -> dict[str, Any]:
    """``{metric: {"mean", "ci95", "n"}}`` for every metric of one policy."""
    return {name: bootstrap_mean(values, samples) for name, values in per_seed_metrics.items()}


def paired_difference(
    policy: np.ndarray, reference: np.ndarray, samples: int = 2000
) -> dict[str, Any]:
    """Mean per-seed difference ``policy − reference`` with its 95% bootstrap interval."""
    return bootstrap_mean(np.asarray(policy) - np.asarray(reference), samples)

"""Micro-benchmark of the portfolio action constraints: ``project_stakes`` and
``kelly_stakes`` for a batch of slates (default 50 selections × 4096 slates).

Each JAX function runs jitted and vmapped over the batch; the reference, measured in
the same run, is the conventional per-slate loop on the CPU: ``scipy.optimize``'s
SLSQP on the same problem (the projection QP; for Kelly, E[log wealth] over a Monte
Carlo sample of joint outcomes). The reference runs on a subset of slates and its
per-slate time is scaled to the batch. Printed: compile time, steady-state time
(median of repeats), per-slate cost, the speed-up ratio, and how closely the answers
agree. ``--json`` prints one JSON object instead.

    .venv/bin/python benchmarks/portfolio_bench.py [--slates 4096] [--selections 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

from market_sim.portfolio import correlation_clusters, kelly_stakes, project_stakes


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(first-call seconds incl. compile, median steady seconds, result)."""
    start = time.perf_counter()
    result = jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return first, float(np.median(times)), result


def make_slates(rng: np.random.Generator, slates: int, selections: int) -> dict[str, np.ndarray]:
    """Random slates: market probabilities, odds with a 5 % margin, model probabilities
    off the market by ~10 %, block correlations (leagues), proposals and depths."""
    market = rng.uniform(0.1, 0.8, (slates, selections))
    probs = np.clip(market * np.exp(rng.normal(0.0, 0.1, market.shape)), 0.01, 0.95)
    odds = 1.0 / (market * 1.05)
    leagues = rng.integers(0, 8, (slates, selections))
    same = leagues[:, :, None] == leagues[:, None, :]
    corr = np.where(same, rng.uniform(0.0, 0.6, (slates, 1, 1)), 0.05)
    corr = (corr + np.swapaxes(corr, 1, 2)) / 2
    corr[:, np.arange(selections), np.arange(selections)] = 1.0
    return {
        "probs": probs.astype(np.float32),
        "odds": odds.astype(np.float32),
        "corr": corr.astype(np.float32),
        "stakes": rng.normal(10.0, 20.0, (slates, selections)).astype(np.float32),
        "depth": rng.uniform(0.0, 60.0, (slates, selections)).astype(np.float32),
    }


BANKROLL, PER_BET_CAP, HARD_CAP = 1000.0, 0.03, 0.25


def scipy_projection(stakes: np.ndarray, labels: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Reference: the projection QP of one slate by SLSQP."""
    upper = np.minimum(PER_BET_CAP * BANKROLL, depth)
    constraints = [
        {
            "type": "ineq",
            "fun": lambda x, m=labels == label: PER_BET_CAP * BANKROLL - x[m].sum(),
            "jac": lambda x, m=labels == label: -m.astype(float),
        }
        for label in np.unique(labels)
    ]
    constraints.append(
        {
            "type": "ineq",
            "fun": lambda x: HARD_CAP * BANKROLL - x.sum(),
            "jac": lambda x: -np.ones_like(x),
        }
    )
    start = np.clip(stakes, 0.0, upper)
    result = minimize(
        lambda x: 0.5 * np.sum((x - stakes) ** 2),
        start,
        jac=lambda x: x - stakes,
        bounds=list(zip(np.zeros_like(upper), upper, strict=True)),
        constraints=constraints,
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    return np.asarray(result.x)


def scenario_returns(
    rng: np.random.Generator, probs: np.ndarray, odds: np.ndarray, count: int
) -> np.ndarray:
    """Per-unit returns [count, n] of independent binary bets in sampled joint outcomes."""
    wins = rng.uniform(size=(count, probs.size)) < probs
    return np.where(wins, odds - 1.0, -1.0)


def scipy_kelly(returns: np.ndarray, max_total: float) -> np.ndarray:
    """Reference: full Kelly of one slate, E[log W] over sampled outcomes, by SLSQP."""
    n = returns.shape[1]

    def negative_growth(f: np.ndarray) -> float:
        return float(-np.mean(np.log(np.maximum(1.0 + returns @ f, 1e-12))))

    def gradient(f: np.ndarray) -> np.ndarray:
        return -(returns.T @ (1.0 / np.maximum(1.0 + returns @ f, 1e-12))) / len(returns)

    result = minimize(
        negative_growth,
        np.full(n, 1e-3),
        jac=gradient,
        bounds=[(0.0, 1.0)] * n,
        constraints=[
            {"type": "ineq", "fun": lambda f: max_total - f.sum(), "jac": lambda f: -np.ones(n)}
        ],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    return np.asarray(result.x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slates", type=int, default=4096)
    parser.add_argument("--selections", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-slates", type=int, default=32, help="projection reference")
    parser.add_argument("--kelly-reference-slates", type=int, default=4)
    parser.add_argument("--scenarios", type=int, default=20000, help="Kelly reference sample")
    parser.add_argument("--max-total", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    data = make_slates(rng, args.slates, args.selections)
    device = jax.devices()[0]
    report: dict[str, Any] = {
        "slates": args.slates,
        "selections": args.selections,
        "jax": jax.__version__,
        "device": f"{device.platform}:{getattr(device, 'device_kind', '?')}",
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }

    # ---------------------------------------------------------------- project_stakes
    corr = jnp.asarray(data["corr"])
    labels = jax.block_until_ready(jax.jit(jax.vmap(correlation_clusters))(corr))
    project = jax.jit(
        jax.vmap(lambda s, i, d: project_stakes(s, BANKROLL, PER_BET_CAP, HARD_CAP, i, d))
    )
    stakes, depth = jnp.asarray(data["stakes"]), jnp.asarray(data["depth"])
    first, steady, projected = timed(lambda: project(stakes, labels, depth), args.repeats)
    clusters_first, clusters_steady, _ = timed(
        lambda: jax.jit(jax.vmap(correlation_clusters))(corr), args.repeats
    )
    subset = range(min(args.reference_slates, args.slates))
    labels_np, projected_np = np.asarray(labels), np.asarray(projected)
    start = time.perf_counter()
    reference = [
        scipy_projection(data["stakes"][i].astype(float), labels_np[i], data["depth"][i])
        for i in subset
    ]
    reference_per_slate = (time.perf_counter() - start) / len(subset)
    gaps = [
        np.linalg.norm(projected_np[i] - data["stakes"][i])
        - np.linalg.norm(reference[k] - data["stakes"][i])
        for k, i in enumerate(subset)
    ]
    difference = max(np.abs(projected_np[i] - reference[k]).max() for k, i in enumerate(subset))
    report["project_stakes"] = {
        "jax_first_call_s": first,
        "jax_steady_s": steady,
        "jax_per_slate_us": 1e6 * steady / args.slates,
        "reference": "scipy SLSQP, one slate per call",
        "reference_per_slate_s": reference_per_slate,
        "reference_batch_s_extrapolated": reference_per_slate * args.slates,
        "speedup": reference_per_slate * args.slates / steady,
        "max_abs_difference_currency": float(difference),
        "max_distance_excess_over_reference": float(max(gaps)),
        "correlation_clusters_steady_s": clusters_steady,
        "correlation_clusters_first_call_s": clusters_first,
    }

    # ------------------------------------------------------------------ kelly_stakes
    kelly = jax.jit(jax.vmap(lambda p, o: kelly_stakes(p, o, 1.0, args.max_total)))
    probs, odds = jnp.asarray(data["probs"]), jnp.asarray(data["odds"])
    first, steady, stakes_kelly = timed(lambda: kelly(probs, odds), args.repeats)
    stakes_np = np.asarray(stakes_kelly, dtype=float)
    subset = range(min(args.kelly_reference_slates, args.slates))
    samples = [
        scenario_returns(
            rng, data["probs"][i].astype(float), data["odds"][i].astype(float), args.scenarios
        )
        for i in subset
    ]
    start = time.perf_counter()
    reference = [scipy_kelly(samples[k], args.max_total) for k, _ in enumerate(subset)]
    reference_per_slate = (time.perf_counter() - start) / len(subset)
    ratios = []
    for k, i in enumerate(subset):
        check = scenario_returns(
            rng, data["probs"][i].astype(float), data["odds"][i].astype(float), 200000
        )
        ours = np.mean(np.log(1.0 + check @ stakes_np[i]))
        theirs = np.mean(np.log(1.0 + check @ reference[k]))
        ratios.append(ours / theirs)
    report["kelly_stakes"] = {
        "fraction": 1.0,
        "max_total": args.max_total,
        "path": "approximate (log-normal rest of slate)" if args.selections > 12 else "exact",
        "jax_first_call_s": first,
        "jax_steady_s": steady,
        "jax_per_slate_us": 1e6 * steady / args.slates,
        "reference": f"scipy SLSQP on {args.scenarios} sampled joint outcomes, one slate per call",
        "reference_per_slate_s": reference_per_slate,
        "reference_batch_s_extrapolated": reference_per_slate * args.slates,
        "speedup": reference_per_slate * args.slates / steady,
        "growth_ratio_vs_reference_min": float(min(ratios)),
        "growth_ratio_vs_reference_mean": float(np.mean(ratios)),
        "mean_total_stake": float(stakes_np.sum(1).mean()),
    }

    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"portfolio_bench: {args.slates} slates × {args.selections} selections"
        f" on {report['device']} ({report['cpu_count']} CPUs), jax {report['jax']}"
    )
    for name in ("project_stakes", "kelly_stakes"):
        r = report[name]
        print(
            f"{name:15s} jax {r['jax_steady_s'] * 1e3:9.1f} ms/batch"
            f" ({r['jax_per_slate_us']:7.1f} µs/slate, first call {r['jax_first_call_s']:.2f} s)"
            f" | reference {r['reference_per_slate_s'] * 1e3:8.2f} ms/slate"
            f" → {r['reference_batch_s_extrapolated']:8.1f} s/batch | speed-up ×{r['speedup']:.0f}"
        )
    p = report["project_stakes"]
    print(
        f"  projection agreement: max |Δ| {p['max_abs_difference_currency']:.2e}"
        f" (currency, bankroll {BANKROLL:g}); distance excess over reference"
        f" {p['max_distance_excess_over_reference']:.2e}; correlation_clusters"
        f" {p['correlation_clusters_steady_s'] * 1e3:.1f} ms/batch"
    )
    k = report["kelly_stakes"]
    print(
        f"  Kelly agreement: E[log W] of ours / reference on a fresh 200k-outcome sample:"
        f" mean {k['growth_ratio_vs_reference_mean']:.4f},"
        f" min {k['growth_ratio_vs_reference_min']:.4f}"
    )


if __name__ == "__main__":
    main()

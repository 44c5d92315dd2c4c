"""Full-market throughput: match-minutes per second, against gymnax CartPole in the same run.

Usage::

    .venv/bin/python benchmarks/market_throughput.py            # table
    .venv/bin/python benchmarks/market_throughput.py --json     # machine-readable

What is timed: ``market_sim.market.rollout`` (jitted): reset of S slates of M = 10
matches in the calm regime (E0 league model) and whole episodes of
``pre_match_ticks + MAX_TICKS`` market steps, each step = our stakes filled up to depth,
crowd flows, liability skew, one match-minute of every match, the bookmaker's requote
(belief grid, oracle grid, Shin margin), liquidity/depth, settlement. Our stakes are a
fixed small random stake array (so fills and impact run). Two batch definitions:

- ``matches_4096``: 4096 matches = 410 slates × 10 (4100 matches);
- ``slates_4096``: 4096 slates × 10 matches (40 960 matches).

match-minutes = minutes actually played (90 + both stoppages per match); the pre-match
ticks and the padded ticks after a match ends are timed but not counted (conservative).
``market_ticks_per_s`` counts every match-tick. Reference: gymnax CartPole-v1 steps/s at
batch 4096 (``benchmarks/sim_throughput.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sim_throughput import cartpole_throughput

from market_sim import market
from market_sim.regimes import market_params

MATCHES_PER_SLATE = 10


def market_throughput(slates: int, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` timing of whole-slate episodes for ``slates`` slates."""
    params = market_params("E0", "calm", n_matches=MATCHES_PER_SLATE)
    ticks = market.episode_ticks(params)
    stakes = jax.random.uniform(
        jax.random.PRNGKey(0), (slates, ticks, MATCHES_PER_SLATE, 5), maxval=2.0
    )
    stakes = stakes * (stakes > 1.9)

    @jax.jit
    def run(key: jax.Array) -> Any:
        state, info = market.rollout(key, params, stakes)
        return state.match.stoppage_first, state.match.stoppage_second, info.equity[:, -1]

    jax.block_until_ready(run(jax.random.PRNGKey(0)))
    best = float("inf")
    for i in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(run(jax.random.PRNGKey(i + 1)))
        best = min(best, time.perf_counter() - start)
    minutes = float((90 + np.asarray(out[0]) + np.asarray(out[1])).sum())
    matches = slates * MATCHES_PER_SLATE
    return {
        "slates": slates,
        "matches": matches,
        "seconds_per_episode": best,
        "match_minutes_per_s": minutes / best,
        "market_ticks_per_s": matches * ticks / best,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-slates-4096", action="store_true", help="only 410 slates")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    cartpole = cartpole_throughput(4096, args.repeats)
    results: dict[str, Any] = {"batch": {}}
    batches = {"matches_4096": -(-4096 // MATCHES_PER_SLATE)}
    if not args.skip_slates_4096:
        batches["slates_4096"] = 4096
    for name, slates in batches.items():
        measured = market_throughput(slates, args.repeats)
        measured["ratio_vs_cartpole"] = measured["match_minutes_per_s"] / cartpole
        results["batch"][name] = measured
    results["reference"] = {"gymnax_cartpole_steps_per_s_batch_4096": cartpole}
    results["machine"] = {
        "load_average_1min_before": load_before,
        "load_average_1min_after": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"gymnax CartPole-v1, batch 4096: {cartpole:,.0f} steps/s (reference)")
    print(
        f"{'batch':>14} {'matches':>8} {'match-minutes/s':>16} {'ticks/s':>12} {'vs CartPole':>12}"
    )
    for name, row in results["batch"].items():
        print(
            f"{name:>14} {row['matches']:>8} {row['match_minutes_per_s']:>16,.0f} "
            f"{row['market_ticks_per_s']:>12,.0f} {row['ratio_vs_cartpole']:>11.2f}x"
        )
    print(f"load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    jnp.zeros(1)  # initialise the backend before timing
    main()

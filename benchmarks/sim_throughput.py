"""Match-engine throughput: match-minutes per second, against gymnax CartPole in the same run.

Usage::

    .venv/bin/python benchmarks/sim_throughput.py            # table
    .venv/bin/python benchmarks/sim_throughput.py --json     # machine-readable

What is timed: ``market_sim.match.simulate_batch`` (whole matches, ``lax.scan`` over
minute ticks, ``vmap`` over the batch) for batches of 1, 256, 4096 and 16384 matches;
match-minutes = minutes actually played (90 + both stoppages), not padded ticks.
Reference: gymnax CartPole-v1 ``step`` vmapped over 4096 environments and scanned over
the same number of ticks, steps per second. Ratio = our match-minutes/s over CartPole
steps/s. Also XLA's cost analysis of one batched engine step (flops and bytes accessed
per match-minute) and the floor those imply given this machine's measured matmul
throughput and memory bandwidth.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from market_sim import match
from market_sim.params import MAX_TICKS, make_engine_params, make_match_params

BATCHES = (1, 256, 4096, 16384)


def _time(function: Callable[[Any], Any], make_arg: Callable[[int], Any], repeats: int) -> float:
    """Best-of-``repeats`` wall time of ``function`` (compiled first), seconds."""
    jax.block_until_ready(function(make_arg(0)))
    best = float("inf")
    for i in range(repeats):
        arg = make_arg(i + 1)
        start = time.perf_counter()
        jax.block_until_ready(function(arg))
        best = min(best, time.perf_counter() - start)
    return best


def _params(batch: int) -> Any:
    rng = np.random.default_rng(0)
    goals = rng.uniform(0.8, 2.0, size=(batch, 2))
    return make_match_params(
        goals=goals,
        shots=goals + 10.0,
        shots_on_target=goals + 2.5,
        corners=np.full((batch, 2), 5.0),
        fouls=np.full((batch, 2), 11.0),
        yellow_cards=np.full((batch, 2), 1.8),
        red_cards=np.full((batch, 2), 0.06),
    )


def engine_throughput(batch: int, repeats: int) -> dict[str, float]:
    engine = make_engine_params(lead_effect=-0.1, trail_effect=0.1, openness_std=0.2)
    params = _params(batch)

    @jax.jit
    def run(key: jax.Array) -> Any:
        state, _ = match.simulate_batch(key, params, engine)
        return state

    seconds = _time(run, jax.random.PRNGKey, repeats)
    state = run(jax.random.PRNGKey(1))
    minutes = float(
        (90 + np.asarray(state.stoppage_first) + np.asarray(state.stoppage_second)).sum()
    )
    return {"seconds": seconds, "match_minutes_per_s": minutes / seconds}


def cartpole_throughput(batch: int, repeats: int) -> float:
    """gymnax CartPole-v1 steps per second, vmapped over ``batch`` and scanned MAX_TICKS."""
    import gymnax

    env, env_params = gymnax.make("CartPole-v1")

    @jax.jit
    def run(key: jax.Array) -> Any:
        keys = jax.random.split(key, batch)
        _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, env_params)

        def body(carry: Any, step_key: jax.Array) -> Any:
            keys = jax.random.split(step_key, batch)
            actions = jax.vmap(lambda k: jax.random.randint(k, (), 0, 2))(keys)
            outputs = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, carry, actions, env_params)
            # gymnax returns (obs, state, reward, terminated, [truncated,] info).
            return outputs[1], outputs[2].sum()

        _, rewards = jax.lax.scan(body, states, jax.random.split(key, MAX_TICKS))
        return rewards.sum()

    seconds = _time(run, jax.random.PRNGKey, repeats)
    return batch * MAX_TICKS / seconds


def cost_analysis(batch: int) -> dict[str, float]:
    """XLA's flops and bytes accessed for one batched engine tick, per match-minute."""
    engine = make_engine_params(lead_effect=-0.1, trail_effect=0.1, openness_std=0.2)
    params = _params(batch)
    keys = jax.random.split(jax.random.PRNGKey(0), batch)
    states = jax.vmap(match.reset, in_axes=(0, 0, None))(keys, params, engine)
    step = jax.jit(jax.vmap(match.step, in_axes=(0, 0, 0, None)))
    compiled = step.lower(keys, states, params, engine).compile()
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0]
    flops = float(analysis.get("flops", float("nan")))
    bytes_accessed = float(analysis.get("bytes accessed", float("nan")))
    return {
        "flops_per_match_minute": flops / batch,
        "bytes_per_match_minute": bytes_accessed / batch,
    }


def machine_peaks() -> dict[str, float]:
    """Measured float32 matmul FLOP/s and streaming memory bandwidth (bytes/s) via XLA."""
    size = 2048
    a = jnp.ones((size, size), jnp.float32)
    matmul = jax.jit(lambda x: x @ x)
    seconds = _time(matmul, lambda _: a, 5)
    flops = 2 * size**3 / seconds
    big = jnp.ones((64 * 1024 * 1024,), jnp.float32)  # 256 MiB
    copy = jax.jit(lambda x: x * 1.0001)
    seconds = _time(copy, lambda _: big, 5)
    bandwidth = 2 * big.size * 4 / seconds  # read + write
    return {"matmul_flops_per_s": flops, "memory_bytes_per_s": bandwidth}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    cartpole = cartpole_throughput(4096, args.repeats)
    results: dict[str, Any] = {"batch": {}}
    for batch in BATCHES:
        measured = engine_throughput(batch, args.repeats if batch <= 4096 else 3)
        results["batch"][batch] = {
            "match_minutes_per_s": measured["match_minutes_per_s"],
            "ratio_vs_cartpole": measured["match_minutes_per_s"] / cartpole,
        }
    costs = cost_analysis(4096)
    peaks = machine_peaks()
    floor_seconds = max(
        costs["flops_per_match_minute"] / peaks["matmul_flops_per_s"],
        costs["bytes_per_match_minute"] / peaks["memory_bytes_per_s"],
    )
    results["reference"] = {"gymnax_cartpole_steps_per_s_batch_4096": cartpole}
    results["cost_analysis_batch_4096"] = costs
    results["machine"] = {
        **peaks,
        "floor_match_minutes_per_s": 1.0 / floor_seconds,
        "cpu_count": jax.local_device_count(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"gymnax CartPole-v1, batch 4096: {cartpole:,.0f} steps/s (reference)")
    print(f"{'batch':>7} {'match-minutes/s':>16} {'vs CartPole':>12}")
    for batch, row in results["batch"].items():
        print(f"{batch:>7} {row['match_minutes_per_s']:>16,.0f} {row['ratio_vs_cartpole']:>11.2f}x")
    print(
        f"XLA cost per match-minute: {costs['flops_per_match_minute']:.0f} flops, "
        f"{costs['bytes_per_match_minute']:.0f} bytes; machine: "
        f"{peaks['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s matmul, "
        f"{peaks['memory_bytes_per_s'] / 1e9:.1f} GB/s; floor "
        f"{results['machine']['floor_match_minutes_per_s']:,.0f} match-minutes/s"
    )


if __name__ == "__main__":
    main()

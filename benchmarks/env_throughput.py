"""Environment throughput: vectorised steps per second, against SB3 DummyVecEnv CartPole.

Usage::

    .venv/bin/python benchmarks/env_throughput.py            # table
    .venv/bin/python benchmarks/env_throughput.py --json     # machine-readable

What is timed:
- ``envs.make_vec(N)`` (Gymnasium ``VectorEnv``, one jitted vmapped call per step, same-
  step autoreset) for N = 1, 64, 1024, 4096 environments of 10 matches each: environment
  steps per second (one step = one market tick of a whole slate) and match-minutes per
  second (steps × 10 matches). The timed steps end no episode (episodes last
  ``episode_ticks`` = 119 ticks and start together), so the reset of finished
  environments, a separate call on the steps where an episode ends, is timed on its own
  (all N at once, as happens at the end of every episode) and charged once per episode in
  ``env_steps_per_s_with_resets``;
- the same through the SB3 ``VecEnv`` interface (``envs.make_sb3_vec``, 64 environments:
  includes building SB3's per-env info dicts);
- reference, same run: Stable-Baselines3 ``DummyVecEnv`` over 8 gymnasium ``CartPole-v1``
  environments, steps per second (the usual SB3 baseline).
Random actions are drawn on the host before timing starts.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import gymnasium as gym
import jax
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv

import envs
from market_sim import market as market_lib

SIZES = (1, 64, 1024, 4096)


def _time_steps(step: Any, actions: np.ndarray, repeats: int) -> float:
    """Seconds per step (best of ``repeats`` blocks of len(actions) steps, warmed up)."""
    step(actions[0])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for action in actions:
            step(action)
        best = min(best, (time.perf_counter() - start) / len(actions))
    return best


def vector_env(num_envs: int, steps: int, repeats: int) -> dict[str, float]:
    vec = envs.make_vec(num_envs)
    vec.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, num_envs, vec.single_action_space.shape[0]))
    seconds = _time_steps(vec.step, actions.astype(np.float32), repeats)
    matches = vec.params.market.n_matches
    # The end-of-episode reset of all environments (the core's reset of finished ones).
    core = vec._core
    every = np.arange(num_envs, dtype=np.int32)
    obs = jax.numpy.asarray(core.obs)

    def reset_all(_: Any) -> Any:
        return jax.block_until_ready(
            core._reset_some(core.key, np.int32(0), core.state, obs, every)
        )

    reset_seconds = _time_steps(reset_all, np.zeros(1), repeats)
    ticks = market_lib.episode_ticks(vec.params.market)
    return {
        "env_steps_per_s": num_envs / seconds,
        "match_minutes_per_s": num_envs * matches / seconds,
        "env_steps_per_s_with_resets": num_envs / (seconds + reset_seconds / ticks),
        "reset_all_s": reset_seconds,
    }


def sb3_vec_env(num_envs: int, steps: int, repeats: int) -> dict[str, float]:
    vec = envs.make_sb3_vec(num_envs)
    vec.reset()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, num_envs, vec.action_space.shape[0])).astype(np.float32)

    def step(action: np.ndarray) -> Any:
        vec.step_async(action)
        return vec.step_wait()

    seconds = _time_steps(step, actions, repeats)
    return {"env_steps_per_s": num_envs / seconds}


def cartpole_dummy(num_envs: int, steps: int, repeats: int) -> float:
    vec = DummyVecEnv([lambda: gym.make("CartPole-v1") for _ in range(num_envs)])
    vec.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, (steps, num_envs))

    def step(action: np.ndarray) -> Any:
        vec.step_async(action)
        return vec.step_wait()

    return num_envs / _time_steps(step, actions, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    reference = cartpole_dummy(8, 2000, args.repeats)
    results: dict[str, Any] = {"make_vec": {}, "reference": {}}
    for size in SIZES:
        row = vector_env(size, args.steps, args.repeats)
        row["ratio_vs_cartpole_dummyvecenv"] = row["env_steps_per_s"] / reference
        results["make_vec"][size] = row
    sb3 = sb3_vec_env(64, args.steps, args.repeats)
    sb3["ratio_vs_cartpole_dummyvecenv"] = sb3["env_steps_per_s"] / reference
    results["sb3_vecenv_64"] = sb3
    results["reference"]["sb3_dummyvecenv_cartpole_x8_steps_per_s"] = reference
    results["machine"] = {
        "platform": platform.platform(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"SB3 DummyVecEnv × 8 CartPole-v1: {reference:,.0f} steps/s (reference)")
    print(
        f"{'envs':>6} {'env steps/s':>12} {'match-min/s':>12} {'vs ref':>8} "
        f"{'with resets':>12} {'reset all':>10}"
    )
    for size, row in results["make_vec"].items():
        print(
            f"{size:>6} {row['env_steps_per_s']:>12,.0f} {row['match_minutes_per_s']:>12,.0f} "
            f"{row['ratio_vs_cartpole_dummyvecenv']:>7.2f}x "
            f"{row['env_steps_per_s_with_resets']:>12,.0f} {row['reset_all_s'] * 1e3:>8.1f}ms"
        )
    print(
        f"SB3 VecEnv interface, 64 envs: {sb3['env_steps_per_s']:,.0f} env steps/s "
        f"({sb3['ratio_vs_cartpole_dummyvecenv']:.2f}x)"
    )


if __name__ == "__main__":
    main()

"""Training throughput: environment steps per second while learning (PPO, three ways).

Usage::

    .venv/bin/python benchmarks/train_throughput.py                 # table
    .venv/bin/python benchmarks/train_throughput.py --json          # machine-readable
    .venv/bin/python benchmarks/train_throughput.py --envs 64 256 --timesteps 16384

What is timed (wall clock of learning only; construction, JIT compilation of the
environment and the first reset are done before the clock starts):

(a) reference: Stable-Baselines3 PPO on gymnasium ``CartPole-v1``, ``DummyVecEnv`` × 8,
    SB3 defaults (n_steps 2048 → 16,384 steps per rollout, 10 epochs, batch 64):
    ``model.learn(timesteps)``;
(b) SB3 PPO on ``envs.make_sb3_vec(N)`` wrapped as in ``agents.sb3.train_sb3``
    (``VecMonitor`` → ``VecNormalize``), n_steps = rollout / N so that one rollout has the
    same number of steps as CartPole's, other hyper-parameters SB3 defaults (printed):
    ``model.learn(timesteps)``; the time spent collecting rollouts (env + policy
    forward) and in the PPO update is split by a callback;
(c) the JAX PPO (``agents.jax_ppo.train``) with ``PPOConfig(num_envs=N)`` (other fields
    default: num_steps 119, 4 epochs, 8 minibatches): the first update compiles; only
    the following updates are timed (steady state); compile time is reported apart.

Steps/s = environment steps (all environments together) / seconds. Targets from the
issue, reported, not enforced: (b) ≥ 20 × (a); (c) ≥ 10 × (b) at the same N. Other work
on the machine lowers every figure: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from typing import Any

import gymnasium as gym
import jax
import numpy as np
import stable_baselines3
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

import envs
from agents import jax_ppo
from market_sim.market import episode_ticks

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"

CARTPOLE_ENVS = 8
CARTPOLE_N_STEPS = 2048  # SB3 PPO default
ROLLOUT = CARTPOLE_ENVS * CARTPOLE_N_STEPS


class _CompileMeter:
    """Counts XLA backend compilations (number, seconds) through ``jax.monitoring``."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, event: str, duration: float, **_: Any) -> None:
        if event == BACKEND_COMPILE_EVENT:
            self.count += 1
            self.seconds += duration

    def snapshot(self) -> tuple[int, float]:
        return self.count, self.seconds


COMPILES = _CompileMeter()
jax.monitoring.register_event_duration_secs_listener(COMPILES)


class _PhaseTimer(BaseCallback):
    """Seconds spent collecting rollouts (the rest of ``learn`` is the PPO update)."""

    def __init__(self) -> None:
        super().__init__()
        self.collect = 0.0
        self._start = 0.0

    def _on_rollout_start(self) -> None:
        self._start = time.perf_counter()

    def _on_rollout_end(self) -> None:
        self.collect += time.perf_counter() - self._start

    def _on_step(self) -> bool:
        return True


def _learn(model: PPO, timesteps: int) -> dict[str, float]:
    timer = _PhaseTimer()
    compiles, compile_seconds = COMPILES.snapshot()
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps, callback=timer, progress_bar=False)
    seconds = time.perf_counter() - start
    steps = int(model.num_timesteps)
    return {
        "jit_compiles_in_timing": COMPILES.count - compiles,
        "jit_compile_seconds_in_timing": COMPILES.seconds - compile_seconds,
        "env_steps": steps,
        "seconds": seconds,
        "steps_per_s": steps / seconds,
        "steps_per_s_excluding_jit": steps
        / max(seconds - (COMPILES.seconds - compile_seconds), 1e-9),
        "collect_seconds": timer.collect,
        "collect_steps_per_s": steps / max(timer.collect, 1e-9),
        "update_seconds": seconds - timer.collect,
    }


def _ppo_settings(model: PPO) -> dict[str, Any]:
    return {
        "n_envs": model.n_envs,
        "n_steps": model.n_steps,
        "rollout": model.n_steps * model.n_envs,
        "n_epochs": model.n_epochs,
        "batch_size": model.batch_size,
    }


def sb3_cartpole(timesteps: int, seed: int) -> dict[str, Any]:
    vec = DummyVecEnv([lambda: gym.make("CartPole-v1") for _ in range(CARTPOLE_ENVS)])
    model = PPO("MlpPolicy", vec, seed=seed, device="cpu", verbose=0)
    return {**_ppo_settings(model), **_learn(model, timesteps)}


def _warm_up(raw: Any, episodes: int, seed: int) -> float:
    """Random-action episodes before timing: compiles reset, step and the partial resets
    of finished environments (whatever the environment compiles lazily)."""
    start = time.perf_counter()
    raw.seed(seed)
    raw.reset()
    rng = np.random.default_rng(seed)
    steps = max(1, episodes * episode_ticks(raw.params.market) + 1)
    for _ in range(steps):
        raw.step_async(rng.uniform(-1, 1, (raw.num_envs, raw.action_space.shape[0])))
        raw.step_wait()
    return time.perf_counter() - start


def sb3_ours(
    num_envs: int, timesteps: int, seed: int, env_kwargs: dict[str, Any], warmup_episodes: int
) -> dict[str, Any]:
    raw = envs.make_sb3_vec(num_envs, **env_kwargs)
    warmup = _warm_up(raw, warmup_episodes, seed)
    raw.seed(seed)
    vec = VecNormalize(VecMonitor(raw), norm_obs=True, norm_reward=False)
    n_steps = max(1, round(ROLLOUT / num_envs))
    model = PPO("MlpPolicy", vec, n_steps=n_steps, seed=seed, device="cpu", verbose=0)
    return {
        **_ppo_settings(model),
        "observation_size": int(raw.observation_space.shape[0]),
        "warmup_seconds": warmup,
        **_learn(model, timesteps),
    }


def jax_ppo_run(
    num_envs: int, updates: int, seed: int, env_kwargs: dict[str, Any]
) -> dict[str, Any]:
    base = jax_ppo.PPOConfig()
    config = jax_ppo.PPOConfig(
        num_envs=num_envs,
        total_timesteps=num_envs * base.num_steps * (updates + 1),
        seed=seed,
        log_every=1,
    )
    params = envs.make_params(**env_kwargs)
    after_update: list[tuple[int, float]] = []
    result = jax_ppo.train(
        config, params, progress=lambda _: after_update.append(COMPILES.snapshot())
    )
    history = result.history
    steps_per_update = config.num_envs * config.num_steps
    steady = (history[-1]["seconds"] - history[0]["seconds"]) / (len(history) - 1)
    return {
        "num_envs": num_envs,
        "num_steps": config.num_steps,
        "update_epochs": config.update_epochs,
        "num_minibatches": config.num_minibatches,
        "steps_per_update": steps_per_update,
        "timed_updates": len(history) - 1,
        "seconds_per_update": steady,
        "steps_per_s": steps_per_update / steady,
        "first_update_seconds": history[0]["seconds"],
        "compile_seconds": max(history[0]["seconds"] - steady, 0.0),
        "jit_compiles_in_timing": after_update[-1][0] - after_update[0][0],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    env_kwargs = {"n_matches": args.n_matches}
    report: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "jax": jax.__version__,
            "jax_backend": jax.default_backend(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "stable_baselines3": stable_baselines3.__version__,
            "load_average_start": list(os.getloadavg()),
        },
        "timesteps": args.timesteps,
        "env_kwargs": env_kwargs,
    }
    report["cartpole"] = sb3_cartpole(args.timesteps, args.seed)
    report["sb3_ours"] = {}
    report["jax_ppo"] = {}
    for n in args.envs:
        report["sb3_ours"][str(n)] = sb3_ours(
            n, args.timesteps, args.seed, env_kwargs, args.warmup_episodes
        )
        if args.jax_updates > 0:
            report["jax_ppo"][str(n)] = jax_ppo_run(n, args.jax_updates, args.seed, env_kwargs)
    cartpole = report["cartpole"]["steps_per_s"]
    ratios: dict[str, Any] = {}
    for n in args.envs:
        ours = report["sb3_ours"][str(n)]["steps_per_s"]
        row = {"sb3_ours_vs_cartpole": ours / cartpole, "target_sb3": 20.0}
        if str(n) in report["jax_ppo"]:
            row["jax_vs_sb3_ours"] = report["jax_ppo"][str(n)]["steps_per_s"] / ours
            row["target_jax"] = 10.0
        ratios[str(n)] = row
    report["ratios"] = ratios
    report["machine"]["load_average_end"] = list(os.getloadavg())
    return report


def print_table(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(
        "Training throughput: env steps/s during learning (wall clock of learn() / steady-state "
        "JAX updates; construction, env JIT compile and first reset excluded)"
    )
    print(
        f"{m['platform']} ({m['cpus']} CPUs), jax {m['jax']} ({m['jax_backend']}), torch "
        f"{m['torch']} ({m['torch_threads']} threads), SB3 {m['stable_baselines3']}; "
        f"load average start {tuple(round(x, 2) for x in m['load_average_start'])}, end "
        f"{tuple(round(x, 2) for x in m['load_average_end'])}"
    )
    print(f"env options {report['env_kwargs']}, SB3 timesteps per run {report['timesteps']}")
    print()
    header = (
        f"{'run':<34}{'steps/s':>10}{'excl. JIT':>11}{'collect/s':>11}{'update s':>10}  settings"
    )
    print(header)
    print("-" * len(header))
    c = report["cartpole"]
    settings = "n_envs {n_envs}, n_steps {n_steps}, n_epochs {n_epochs}, batch {batch_size}"
    print(
        f"{'(a) SB3 PPO CartPole DummyVecEnv×8':<34}{c['steps_per_s']:>10,.0f}"
        f"{c['steps_per_s_excluding_jit']:>11,.0f}{c['collect_steps_per_s']:>11,.0f}"
        f"{c['update_seconds']:>10.2f}  {settings.format(**c)}"
    )
    for n, row in report["sb3_ours"].items():
        print(
            f"{f'(b) SB3 PPO make_sb3_vec({n})':<34}{row['steps_per_s']:>10,.0f}"
            f"{row['steps_per_s_excluding_jit']:>11,.0f}{row['collect_steps_per_s']:>11,.0f}"
            f"{row['update_seconds']:>10.2f}  "
            f"{settings.format(**row)}, obs {row['observation_size']}; "
            f"JIT compiles while timed: {row['jit_compiles_in_timing']} "
            f"({row['jit_compile_seconds_in_timing']:.1f} s)"
        )
    for n, row in report["jax_ppo"].items():
        print(
            f"{f'(c) JAX PPO num_envs {n}':<34}{row['steps_per_s']:>10,.0f}"
            f"{row['steps_per_s']:>11,.0f}{'—':>11}"
            f"{row['seconds_per_update']:>10.2f}  num_steps {row['num_steps']}, epochs "
            f"{row['update_epochs']}, minibatches {row['num_minibatches']}, "
            f"{row['timed_updates']} timed updates, compile ≈ {row['compile_seconds']:.1f} s "
            f"(first update − steady one); JIT compiles while timed: "
            f"{row['jit_compiles_in_timing']}"
        )
    print()
    print("Ratios (targets from the issue, reported only):")
    for n, row in report["ratios"].items():
        line = (
            f"  N={n}: SB3 ours / SB3 CartPole = {row['sb3_ours_vs_cartpole']:.2f}x "
            f"(target ≥ {row['target_sb3']:.0f}x: "
            f"{'met' if row['sb3_ours_vs_cartpole'] >= row['target_sb3'] else 'not met'})"
        )
        if "jax_vs_sb3_ours" in row:
            line += (
                f"; JAX PPO / SB3 ours = {row['jax_vs_sb3_ours']:.2f}x (target ≥ "
                f"{row['target_jax']:.0f}x: "
                f"{'met' if row['jax_vs_sb3_ours'] >= row['target_jax'] else 'not met'})"
            )
        print(line)
    print(
        "excl. JIT: learn() wall time minus XLA compilations that happened inside it (the "
        "environment compiles partial resets lazily); collect/s: rollout collection only (env "
        "steps + policy forward); update s: PPO epochs (SB3) / one update (JAX)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--timesteps",
        type=int,
        default=ROLLOUT,
        help=f"timesteps per SB3 learn() (default {ROLLOUT}: one CartPole PPO rollout)",
    )
    parser.add_argument("--envs", type=int, nargs="+", default=[64, 256], help="N for (b) and (c)")
    parser.add_argument(
        "--jax-updates", type=int, default=3, help="timed JAX PPO updates after the first (0: skip)"
    )
    parser.add_argument("--n-matches", type=int, default=10, help="matches per slate")
    parser.add_argument(
        "--warmup-episodes",
        type=int,
        default=3,
        help="random-action episodes run on (b)'s environment before timing (lazy JIT)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads for SB3 (default 1: on a shared 2-core machine, 2 "
        "threads made SB3 PPO's small-MLP updates ~7x slower)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args()
    if args.jax_updates < 0 or args.timesteps < 1 or min(args.envs) < 1:
        parser.error("--timesteps and --envs must be ≥ 1, --jax-updates ≥ 0")
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(args.torch_threads)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()

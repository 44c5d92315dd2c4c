"""Train a policy: the JAX PPO or a Stable-Baselines3 algorithm, chosen by config.

    python -m experiments.train [agent=jax_ppo|ppo|sac|a2c|td3|recurrent_ppo] \\
        [regime=biased_crowd] [agent.total_timesteps=...] [out_dir=DIR]

Writes ``DIR/checkpoint/`` (``policy.safetensors`` + ``metadata.json``: no pickle),
``DIR/training.json`` (learning curve, throughput, provenance) and logs to W&B (offline
by default, under ``DIR/wandb``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from agents import jax_ppo
from agents.checkpoint import save_jax_policy
from envs import functional
from envs.config import make_params
from experiments import tracking
from experiments.config import env_kwargs, ppo_config, to_plain, validate
from experiments.provenance import provenance


def _json_env(config: Any) -> dict[str, Any]:
    return {
        "market": to_plain(config.market),
        "env": to_plain(config.env),
        "regime": to_plain(config.regime),
    }


def train_jax_ppo(config: Any, out_dir: Path, run: Any = None) -> tuple[Path, dict[str, Any]]:
    """Train the JAX PPO; save the best seed's policy (by its late training return)."""
    ppo = ppo_config(config)
    params = make_params(**env_kwargs(config))

    def progress(row: dict[str, Any]) -> None:
        print(
            f"update {row['update']:4d}  steps {row['env_steps']:>10,d}  "
            f"log-growth/slate {row['episode_log_growth']:+.4f}  "
            f"value loss {row['value_loss']:.3f}  {row['seconds']:6.0f} s",
            flush=True,
        )
        tracking.log(run, {f"train/{k}": v for k, v in row.items() if not isinstance(v, list)})

    result = jax_ppo.train(ppo, params, progress=progress)
    best_seed = jax_ppo.best_seed(result.history)
    runner = jax_ppo.seed_slice(result.runner, best_seed)
    network = jax_ppo.network_config(ppo, params)
    training = {
        "seconds": round(result.seconds, 1),
        "env_steps": result.env_steps,
        "env_steps_per_second": round(result.env_steps / max(result.seconds, 1e-9), 1),
        "stopped_early": result.stopped_early,
        "updates": len(result.history),
        "best_seed": best_seed,
        "history": [
            {k: v for k, v in row.items() if k != "log_growth_per_seed"} for row in result.history
        ],
    }
    metadata = {
        "algorithm": "jax_ppo",
        "agent": dataclasses.asdict(ppo),
        **_json_env(config),
        "observation_names": functional.observation_names(params),
        "observation_size": functional.observation_size(params),
        "action_size": params.market.n_matches * 5,
        "run": provenance(),
        "training": {k: v for k, v in training.items() if k != "history"},
    }
    checkpoint = save_jax_policy(
        out_dir / "checkpoint",
        runner.train_state.params,
        runner.normaliser,
        network,
        metadata,
    )
    return checkpoint, training


def train_sb3_agent(config: Any, out_dir: Path, run: Any = None) -> tuple[Path, dict[str, Any]]:
    """Train an SB3 algorithm on ``envs.make_sb3_vec``."""
    from agents.sb3 import train_sb3

    del run
    hyper = dict(to_plain(config.agent.hyperparameters))
    hyper.setdefault("policy_kwargs", {"net_arch": list(config.policy.sb3_net_arch)})
    started = time.perf_counter()
    checkpoint = train_sb3(
        config.agent.name,
        env_kwargs(config),
        num_envs=int(config.agent.num_envs),
        total_timesteps=int(config.agent.total_timesteps),
        seed=int(config.agent.seed),
        out_dir=out_dir,
        hyperparameters=hyper,
    )
    seconds = time.perf_counter() - started
    # One metadata layout for every framework: the market/env/regime groups as JSON
    # (experiments.export and agents.loading rebuild the environment from them).
    meta_path = Path(checkpoint) / "metadata.json"
    metadata = json.loads(meta_path.read_text())
    metadata.update(_json_env(config))
    meta_path.write_text(json.dumps(metadata, indent=2))
    return Path(checkpoint), {
        "seconds": round(seconds, 1),
        "env_steps": int(config.agent.total_timesteps),
        "env_steps_per_second": round(int(config.agent.total_timesteps) / seconds, 1),
    }


def train(config: Any, out_dir: Path, run: Any = None) -> tuple[Path, dict[str, Any]]:
    """Train the configured agent; returns (checkpoint directory, training summary)."""
    validate(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.agent.name == "jax_ppo":
        checkpoint, training = train_jax_ppo(config, out_dir, run)
    else:
        checkpoint, training = train_sb3_agent(config, out_dir, run)
    document = {
        "agent": config.agent.name,
        "checkpoint": str(checkpoint),
        "training": training,
        "run": {**provenance(), "config": to_plain(config)},
    }
    (out_dir / "training.json").write_text(json.dumps(document, indent=2))
    return checkpoint, training


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(config: DictConfig) -> None:
    out_dir = Path(config.out_dir)
    run = tracking.start(config, out_dir, job="train")
    checkpoint, training = train(config, out_dir, run)
    tracking.finish(run, summary={"train/seconds": training["seconds"]})
    print(f"checkpoint: {checkpoint.resolve()}")


if __name__ == "__main__":
    main()

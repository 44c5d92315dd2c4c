"""Export a trained policy to ONNX (deterministic actions, normalisation inside the graph).

    python -m experiments.export checkpoint=DIR out=policy.onnx

Works for JAX PPO and Stable-Baselines3 checkpoints (``agents.checkpoint`` format). The
ONNX model takes ``observation`` [batch, obs] (float32, the environment's layout, whose
column names are stored in the model's metadata) and returns ``action`` [batch, M·5].
It then checks onnxruntime's actions against the framework's on observations from the
environment and prints the largest difference.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from agents.checkpoint import load_tensors
from agents.loading import load_policy
from agents.policy import HostPolicy
from envs import make_vec
from envs.config import make_params
from experiments import config as _config  # noqa: F401  (registers the config schema)
from policies.export import export_onnx, onnx_host_policy


def export(checkpoint: str | Path, out: str | Path, check_observations: int = 256) -> float:
    """Write the ONNX file; returns max |onnxruntime − framework| on sampled observations."""
    checkpoint, out = Path(checkpoint), Path(out)
    _, metadata = load_tensors(checkpoint)
    env = {**metadata["market"], **metadata["env"]}
    from market_sim.regimes import regime_from_config

    env["regime"] = regime_from_config(metadata["regime"])
    out.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(checkpoint, out)
    params = make_params(**env)
    framework = load_policy(checkpoint, params)
    exported = onnx_host_policy(out, "onnx")
    vec = make_vec(min(check_observations, 64), **env)
    observations = [vec.reset(seed=0)[0]]
    while sum(len(o) for o in observations) < check_observations:
        observations.append(vec.step(vec.action_space.sample())[0])
    batch = np.concatenate(observations)[:check_observations].astype(np.float32)
    if isinstance(framework, HostPolicy):
        reference = framework.function(batch)
    else:
        import jax

        reference = np.asarray(
            jax.vmap(framework.function, in_axes=(None, 0, None, None))(
                jax.random.PRNGKey(0), batch, None, params
            )
        )
    return float(np.max(np.abs(exported.function(batch) - reference)))


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(config: DictConfig) -> None:
    if config.checkpoint is None or config.out is None:
        raise ValueError("export: give checkpoint=DIR and out=FILE.onnx")
    difference = export(config.checkpoint, config.out)
    print(f"wrote {Path(config.out).resolve()}; max |onnxruntime − framework| = {difference:.2e}")


if __name__ == "__main__":
    main()

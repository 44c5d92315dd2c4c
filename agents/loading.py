"""Load any saved policy as an ``agents.policy`` policy, checking the observation layout.

``load_policy(path, env_params)`` accepts a JAX PPO checkpoint directory, a
Stable-Baselines3 checkpoint directory (``agents.checkpoint`` format, both) or an exported
``.onnx`` file; a policy saved for another observation layout is rejected with the first
differing column (``agents.checkpoint.check_layout``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax

from agents.checkpoint import check_layout, load_jax_policy, load_tensors
from agents.policy import JaxPolicy, Policy
from envs import functional
from envs.functional import EnvParams
from policies.networks import MatchwiseActorCritic, deterministic_action


def jax_policy(
    name: str, network_params: Any, normaliser: Any, network: MatchwiseActorCritic
) -> JaxPolicy:
    """The deterministic policy of trained ``MatchwiseActorCritic`` weights."""

    def act(key: jax.Array, observation: jax.Array, state: Any, params: Any) -> jax.Array:
        del key, state, params
        return deterministic_action(network, network_params, normaliser, observation)

    return JaxPolicy(name=name, function=act)


def load_policy(path: str | Path, env_params: EnvParams, name: str | None = None) -> Policy:
    """A saved policy (checkpoint directory or ``.onnx`` file) for ``env_params``."""
    path = Path(path)
    names = functional.observation_names(env_params)
    if path.suffix == ".onnx":
        from policies.export import onnx_host_policy, onnx_metadata

        check_layout(onnx_metadata(path), names)
        return onnx_host_policy(path, name or path.stem)
    if not path.exists():
        raise FileNotFoundError(f"policy checkpoint {path}: no such file or directory")
    _, metadata = load_tensors(path)
    check_layout(metadata, names)
    if metadata["framework"] == "jax_ppo":
        network_params, normaliser, network_config, _ = load_jax_policy(path)
        return jax_policy(
            name or "jax_ppo", network_params, normaliser, MatchwiseActorCritic(network_config)
        )
    if metadata["framework"] == "sb3":
        from agents.sb3 import sb3_host_policy

        return sb3_host_policy(path, name or metadata.get("algorithm", "sb3"))
    raise ValueError(
        f"checkpoint {path}: unknown framework {metadata['framework']!r}; "
        "expected 'jax_ppo' or 'sb3'"
    )

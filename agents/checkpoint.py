"""Checkpoints without pickle: weights in safetensors, everything else in JSON.

A checkpoint is a directory:

- ``policy.safetensors``: flat tensors (network weights; observation normaliser
  ``normaliser/mean``, ``normaliser/var``, ``normaliser/count``);
- ``metadata.json``: ``{"format": "tetra-policy/1", "framework": "jax_ppo" | "sb3",
  "algorithm", "network": {...}, "agent": {...}, "env": {...}, "observation_names":
  [...], "observation_size", "action_size", "run": {...}}``.

``observation_names`` pins the layout: loading a checkpoint into an environment with a
different layout is an error that names the first differing column.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from safetensors.numpy import load_file, save_file

from policies.networks import NetworkConfig, ObservationNormaliser

FORMAT = "tetra-policy/1"
WEIGHTS_FILE = "policy.safetensors"
METADATA_FILE = "metadata.json"


def save_tensors(directory: Path, tensors: dict[str, np.ndarray], metadata: dict[str, Any]) -> Path:
    """Write ``tensors`` and ``metadata`` into ``directory`` (created)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, directory / WEIGHTS_FILE)
    (directory / METADATA_FILE).write_text(json.dumps({"format": FORMAT, **metadata}, indent=2))
    return directory


def load_tensors(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint directory; errors say which file is missing or malformed."""
    directory = Path(directory)
    weights, meta = directory / WEIGHTS_FILE, directory / METADATA_FILE
    for path in (weights, meta):
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {directory}: missing {path.name}")
    metadata = json.loads(meta.read_text())
    if metadata.get("format") != FORMAT:
        raise ValueError(
            f"checkpoint {directory}: format {metadata.get('format')!r}, expected {FORMAT!r}"
        )
    return load_file(weights), metadata


def check_layout(metadata: dict[str, Any], observation_names: list[str]) -> None:
    """Raise if the checkpoint's observation layout differs from the environment's."""
    saved = list(metadata["observation_names"])
    if saved == list(observation_names):
        return
    if len(saved) != len(observation_names):
        raise ValueError(
            f"checkpoint observation layout has {len(saved)} columns, the environment "
            f"{len(observation_names)} (different n_matches or observation version)"
        )
    index = next(i for i, (a, b) in enumerate(zip(saved, observation_names, strict=True)) if a != b)
    raise ValueError(
        f"checkpoint observation layout differs at column {index}: checkpoint "
        f"{saved[index]!r}, environment {observation_names[index]!r}"
    )


def save_jax_policy(
    directory: Path,
    network_params: Any,
    normaliser: ObservationNormaliser,
    network: NetworkConfig,
    metadata: dict[str, Any],
) -> Path:
    """Save a ``MatchwiseActorCritic``'s weights, normaliser and shapes."""
    flat = traverse_util.flatten_dict(network_params, sep="/")
    tensors = {f"params/{k}": np.asarray(v, np.float32) for k, v in flat.items()}
    tensors["normaliser/mean"] = np.asarray(normaliser.mean, np.float32)
    tensors["normaliser/var"] = np.asarray(normaliser.var, np.float32)
    tensors["normaliser/count"] = np.asarray([normaliser.count], np.float32)
    meta = {"framework": "jax_ppo", "network": network.__dict__, **metadata}
    return save_tensors(directory, tensors, meta)


def load_jax_policy(
    directory: Path,
) -> tuple[Any, ObservationNormaliser, NetworkConfig, dict[str, Any]]:
    """(network params, normaliser, network config, metadata) of a JAX PPO checkpoint."""
    tensors, metadata = load_tensors(directory)
    if metadata.get("framework") != "jax_ppo":
        raise ValueError(
            f"checkpoint {directory}: framework {metadata.get('framework')!r}, expected 'jax_ppo'"
        )
    params = traverse_util.unflatten_dict(
        {
            k[len("params/") :]: jnp.asarray(v)
            for k, v in tensors.items()
            if k.startswith("params/")
        },
        sep="/",
    )
    normaliser = ObservationNormaliser(
        mean=jnp.asarray(tensors["normaliser/mean"]),
        var=jnp.asarray(tensors["normaliser/var"]),
        count=jnp.float32(tensors["normaliser/count"][0]),
    )
    return params, normaliser, NetworkConfig(**metadata["network"]), metadata

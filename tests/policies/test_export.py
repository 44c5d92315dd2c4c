"""ONNX export of a JAX PPO checkpoint: onnxruntime vs ``deterministic_action``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from agents.checkpoint import load_jax_policy, save_jax_policy
from envs import functional, make_params
from policies.export import export_onnx, onnx_host_policy, onnx_metadata, policy_module
from policies.networks import (
    MatchwiseActorCritic,
    NetworkConfig,
    ObservationNormaliser,
    deterministic_action,
)

N_MATCHES = 2


@pytest.fixture(scope="module")
def env_observations() -> np.ndarray:
    params = make_params(n_matches=N_MATCHES)
    keys = jax.random.split(jax.random.PRNGKey(3), 8)
    obs, _ = jax.jit(jax.vmap(functional.reset, in_axes=(0, None)))(keys, params)
    return np.asarray(obs)


@pytest.fixture(scope="module")
def jax_checkpoint(tmp_path_factory: pytest.TempPathFactory, env_observations: np.ndarray) -> Path:
    """An untrained network (action head scaled up so actions spread over and past ±1)
    and a normaliser whose statistics differ from the identity."""
    params = make_params(n_matches=N_MATCHES)
    names = functional.observation_names(params)
    size = len(names)
    config = NetworkConfig(
        n_matches=N_MATCHES,
        match_width=len(functional.MATCH_COLUMNS),
        global_width=len(functional.GLOBAL_COLUMNS),
        hidden=32,
    )
    network = MatchwiseActorCritic(config)
    variables = network.init(jax.random.PRNGKey(0), jnp.zeros((size,), jnp.float32))
    variables = jax.tree_util.tree_map_with_path(
        lambda path, x: x * 100.0 if "actor_out']['kernel" in jax.tree_util.keystr(path) else x,
        variables,
    )
    rng = np.random.default_rng(1)
    spread = env_observations.std(axis=0) + 0.1
    normaliser = ObservationNormaliser(
        mean=jnp.asarray(env_observations.mean(axis=0) + rng.normal(0, 0.5, size), jnp.float32),
        var=jnp.asarray((spread * rng.uniform(0.5, 2.0, size)) ** 2, jnp.float32),
        count=jnp.float32(1234.0),
    )
    metadata = {
        "algorithm": "ppo",
        "env": {"n_matches": N_MATCHES},
        "observation_names": names,
        "observation_size": size,
        "action_size": N_MATCHES * 5,
    }
    out = tmp_path_factory.mktemp("jax_ppo") / "policy"
    return save_jax_policy(out, variables, normaliser, config, metadata)


def test_jax_onnx_matches_deterministic_action(
    jax_checkpoint: Path, env_observations: np.ndarray, tmp_path: Path
) -> None:
    variables, normaliser, config, metadata = load_jax_policy(jax_checkpoint)
    size = metadata["observation_size"]
    low, high = env_observations.min(axis=0), env_observations.max(axis=0)
    margin = 0.5 * (high - low) + 1.0
    rng = np.random.default_rng(0)
    random = rng.uniform(low - margin, high + margin, (1000 - len(env_observations), size))
    obs = np.concatenate([env_observations, random]).astype(np.float32)

    network = MatchwiseActorCritic(config)
    expected = np.asarray(deterministic_action(network, variables, normaliser, jnp.asarray(obs)))
    assert 0.05 < np.mean(np.abs(expected) == 1.0) < 0.95  # the clip is exercised, not saturated

    module, _ = policy_module(jax_checkpoint)
    torch_actions = module(torch.from_numpy(obs)).detach().numpy()
    np.testing.assert_allclose(torch_actions, expected, rtol=0, atol=1e-5)

    path = export_onnx(jax_checkpoint, tmp_path / "jax.onnx")
    props = onnx_metadata(path)
    assert json.loads(props["observation_names"]) == metadata["observation_names"]
    assert props["framework"] == "jax_ppo" and props["action_size"] == str(N_MATCHES * 5)
    assert json.loads(props["tetra_metadata"])["network"]["hidden"] == 32
    policy = onnx_host_policy(path, "jax_onnx", observation_names=metadata["observation_names"])
    actions = policy.function(obs)
    assert actions.shape == (1000, N_MATCHES * 5) and actions.dtype == np.float32
    assert np.abs(actions - expected).max() <= 1e-5
    assert policy.function(obs[:3]).shape == (3, N_MATCHES * 5)


def test_jax_export_bad_inputs(jax_checkpoint: Path, tmp_path: Path) -> None:
    path = export_onnx(jax_checkpoint, tmp_path / "jax.onnx")
    names = json.loads(onnx_metadata(path)["observation_names"])
    with pytest.raises(ValueError, match=r"differs at column 0: checkpoint 'm0_minute'"):
        onnx_host_policy(path, "x", observation_names=["other", *names[1:]])
    with pytest.raises(ValueError, match="columns"):
        onnx_host_policy(path, "x", observation_names=names * 2)

    unknown = tmp_path / "unknown"
    shutil.copytree(jax_checkpoint, unknown)
    meta = json.loads((unknown / "metadata.json").read_text())
    (unknown / "metadata.json").write_text(json.dumps({**meta, "framework": "keras"}))
    with pytest.raises(ValueError, match="framework 'keras'"):
        export_onnx(unknown, tmp_path / "y.onnx")

    (jax_checkpoint.parent / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"policy\.safetensors"):
        export_onnx(jax_checkpoint.parent / "empty", tmp_path / "z.onnx")

    wrong = tmp_path / "wrong"
    shutil.copytree(jax_checkpoint, wrong)
    meta["network"]["hidden"] = 16
    (wrong / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="actor_0/kernel has shape"):
        export_onnx(wrong, tmp_path / "w.onnx")

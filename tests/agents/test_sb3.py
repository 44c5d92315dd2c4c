"""Stable-Baselines3 trainer: train → save (no pickle) → load → host policy → ONNX parity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import jax
import numpy as np
import pytest
from safetensors.numpy import load_file
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from agents.sb3 import (
    SB3_ALGORITHMS,
    check_hyperparameters,
    load_sb3_policy,
    sb3_host_policy,
    train_sb3,
)
from envs import functional, make_params
from policies.export import export_onnx, onnx_host_policy, onnx_metadata

ENV_KWARGS: dict[str, Any] = {"n_matches": 2}
TINY_PPO: dict[str, Any] = {
    "n_steps": 16,
    "batch_size": 32,
    "n_epochs": 1,
    # PyTorch's default init (not SB3's orthogonal one with gain 0.01 on the action head)
    # so that actions are O(1) and the parity checks are not trivially small.
    "policy_kwargs": {"ortho_init": False, "net_arch": [32, 32], "activation_fn": "tanh"},
}


def observation_sample(size: int, n: int = 1000, seed: int = 0) -> np.ndarray:
    """A few real observations (reset of 8 slates) plus random ones around their range."""
    params = make_params(**ENV_KWARGS)
    keys = jax.random.split(jax.random.PRNGKey(seed), 8)
    real = np.asarray(jax.jit(jax.vmap(functional.reset, in_axes=(0, None)))(keys, params)[0])
    assert real.shape[1] == size
    low, high = real.min(axis=0), real.max(axis=0)
    margin = 0.5 * (high - low) + 1.0
    rng = np.random.default_rng(seed)
    random = rng.uniform(low - margin, high + margin, (n - len(real), size))
    return np.concatenate([real, random]).astype(np.float32)


def reference_actions(checkpoint: Path, obs: np.ndarray) -> np.ndarray:
    """VecNormalize's formula, written out here, then the SB3 policy's ``predict``."""
    tensors = load_file(checkpoint / "policy.safetensors")
    meta = json.loads((checkpoint / "metadata.json").read_text())
    norm = meta["normaliser"]
    scaled = (obs - tensors["normaliser/mean"]) / np.sqrt(
        tensors["normaliser/var"] + norm["epsilon"]
    )
    normalised = np.clip(scaled, -norm["clip_obs"], norm["clip_obs"]).astype(np.float32)
    policy, _, _ = load_sb3_policy(checkpoint)
    actions, _ = policy.predict(normalised, deterministic=True)
    return np.asarray(actions)


class _RecordingPPO(PPO):
    """PPO that keeps every instance, so tests can compare the saved policy with it."""

    instances: ClassVar[list[PPO]] = []

    def _setup_model(self) -> None:
        super()._setup_model()
        _RecordingPPO.instances.append(self)


@pytest.fixture(scope="module")
def trained_ppo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PPO]:
    """(checkpoint dir, the trained SB3 model in memory) of a tiny PPO run."""
    out = tmp_path_factory.mktemp("sb3_ppo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(SB3_ALGORITHMS, "ppo", _RecordingPPO)
        path = train_sb3("ppo", ENV_KWARGS, 2, 64, 0, out, TINY_PPO)
    return path, _RecordingPPO.instances[-1]


@pytest.fixture(scope="module")
def ppo_checkpoint(trained_ppo: tuple[Path, PPO]) -> Path:
    return trained_ppo[0]


def test_checkpoint_contents(ppo_checkpoint: Path) -> None:
    assert sorted(p.name for p in ppo_checkpoint.iterdir()) == [
        "metadata.json",
        "policy.safetensors",
    ]
    meta = json.loads((ppo_checkpoint / "metadata.json").read_text())
    names = functional.observation_names(make_params(**ENV_KWARGS))
    assert meta["framework"] == "sb3" and meta["algorithm"] == "ppo"
    assert meta["observation_names"] == names
    assert meta["observation_size"] == len(names) and meta["action_size"] == 10
    assert meta["env"] == ENV_KWARGS
    assert meta["hyperparameters"]["n_steps"] == 16
    assert meta["effective_hyperparameters"]["batch_size"] == 32
    assert meta["run"]["env_steps"] >= 64
    tensors = load_file(ppo_checkpoint / "policy.safetensors")
    assert tensors["normaliser/mean"].shape == (len(names),)
    assert tensors["normaliser/var"].shape == (len(names),)
    assert np.all(tensors["normaliser/var"] >= 0)
    policy, normaliser, _ = load_sb3_policy(ppo_checkpoint, observation_names=names)
    assert not policy.training
    for name, value in policy.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), tensors[f"policy/{name}"])
    assert policy.mlp_extractor.policy_net[0].out_features == 32
    np.testing.assert_array_equal(normaliser.mean, tensors["normaliser/mean"])


def test_saved_policy_is_the_trained_one(trained_ppo: tuple[Path, PPO]) -> None:
    path, model = trained_ppo
    tensors = load_file(path / "policy.safetensors")
    for name, value in model.policy.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), tensors[f"policy/{name}"])
    vec = model.get_env()
    assert isinstance(vec, VecNormalize)
    np.testing.assert_array_equal(vec.obs_rms.mean, tensors["normaliser/mean"])
    np.testing.assert_array_equal(vec.obs_rms.var, tensors["normaliser/var"])
    obs = observation_sample(vec.observation_space.shape[0], n=64)
    expected, _ = model.predict(vec.normalize_obs(obs), deterministic=True)
    np.testing.assert_allclose(sb3_host_policy(path).function(obs), expected, rtol=0, atol=1e-6)


def test_host_policy_and_onnx_match_sb3(ppo_checkpoint: Path, tmp_path: Path) -> None:
    meta = json.loads((ppo_checkpoint / "metadata.json").read_text())
    obs = observation_sample(meta["observation_size"])
    expected = reference_actions(ppo_checkpoint, obs)
    assert expected.shape == (1000, 10)
    assert np.abs(expected).max() > 0.05  # not a degenerate all-zero policy

    host = sb3_host_policy(ppo_checkpoint, name="ppo")
    assert host.name == "ppo"
    np.testing.assert_allclose(host.function(obs), expected, rtol=0, atol=1e-6)

    path = export_onnx(ppo_checkpoint, tmp_path / "ppo.onnx")
    props = onnx_metadata(path)
    assert json.loads(props["observation_names"]) == meta["observation_names"]
    assert json.loads(props["tetra_metadata"])["algorithm"] == "ppo"
    onnx_policy = onnx_host_policy(path, "ppo_onnx", observation_names=meta["observation_names"])
    actions = onnx_policy.function(obs)
    assert actions.shape == expected.shape and actions.dtype == np.float32
    assert np.abs(actions - expected).max() <= 1e-5
    assert np.all(np.abs(actions) <= 1.0)
    # dynamic batch axis
    assert onnx_policy.function(obs[:1]).shape == (1, 10)


def test_unknown_algorithm(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown SB3 algorithm 'dqn'") as info:
        train_sb3("dqn", ENV_KWARGS, 2, 64, 0, tmp_path)
    for name in SB3_ALGORITHMS:
        assert name in str(info.value)


def test_unknown_hyperparameter(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'n_step'.*'ppo'"):
        train_sb3("ppo", ENV_KWARGS, 2, 64, 0, tmp_path, {"n_step": 16})
    with pytest.raises(ValueError, match=r"'buffer_size'.*'a2c'"):
        check_hyperparameters("a2c", {"buffer_size": 10})
    with pytest.raises(ValueError, match=r"'seed'.*set by train_sb3"):
        check_hyperparameters("ppo", {"seed": 1})
    with pytest.raises(ValueError, match=r"policy_kwargs \['widths'\].*'sac'"):
        check_hyperparameters("sac", {"policy_kwargs": {"widths": [8]}})
    with pytest.raises(ValueError, match="activation"):
        check_hyperparameters("td3", {"policy_kwargs": {"activation_fn": "swish2"}})
    assert check_hyperparameters("sac", {"buffer_size": 10, "tau": 0.01})["tau"] == 0.01


def test_layout_mismatch(ppo_checkpoint: Path, tmp_path: Path) -> None:
    names = list(json.loads((ppo_checkpoint / "metadata.json").read_text())["observation_names"])
    swapped = [*names]
    swapped[3], swapped[4] = swapped[4], swapped[3]
    with pytest.raises(ValueError, match="differs at column 3"):
        load_sb3_policy(ppo_checkpoint, observation_names=swapped)
    with pytest.raises(ValueError, match="columns"):
        sb3_host_policy(ppo_checkpoint, observation_names=names[:-1])
    path = export_onnx(ppo_checkpoint, tmp_path / "ppo.onnx")
    with pytest.raises(ValueError, match="differs at column 3"):
        onnx_host_policy(path, "ppo", observation_names=swapped)


@pytest.mark.parametrize("missing", ["metadata.json", "policy.safetensors"])
def test_missing_files(ppo_checkpoint: Path, tmp_path: Path, missing: str) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(ppo_checkpoint, broken)
    (broken / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        load_sb3_policy(broken)
    with pytest.raises(FileNotFoundError, match=missing):
        export_onnx(broken, tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError, match="no such file"):
        onnx_host_policy(tmp_path / "absent.onnx", "x")


def test_wrong_framework_and_unsafe_class(ppo_checkpoint: Path, tmp_path: Path) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(ppo_checkpoint, edited)
    meta_path = edited / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "framework": "jax_ppo"}))
    with pytest.raises(ValueError, match="expected 'sb3'"):
        load_sb3_policy(edited)
    meta["policy_constructor"]["activation_fn"] = {"__class__": "os.system"}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="only classes from"):
        load_sb3_policy(edited)


@pytest.mark.slow
def test_eval_and_checkpoint_callbacks(tmp_path: Path) -> None:
    """EvalCallback (frozen, synced VecNormalize) and CheckpointCallback run."""
    path = train_sb3(
        "ppo",
        ENV_KWARGS,
        2,
        64,
        1,
        tmp_path,
        TINY_PPO,
        eval_freq=32,
        eval_episodes=2,
        checkpoint_freq=32,
    )
    evaluations = np.load(tmp_path / "eval" / "evaluations.npz")
    assert evaluations["results"].shape == (2, 2)  # two evaluations of two episodes
    assert np.all(np.isfinite(evaluations["results"]))
    saved = sorted(p.name for p in (tmp_path / "sb3_checkpoints").iterdir())
    assert "ppo_32_steps.zip" in saved and "ppo_vecnormalize_32_steps.pkl" in saved
    assert (path / "policy.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["a2c", "sac", "td3"])
def test_other_algorithms_export(algorithm: str, tmp_path: Path) -> None:
    hyper: dict[str, Any] = {"policy_kwargs": {"net_arch": [16, 16]}}
    if algorithm == "a2c":
        hyper["n_steps"] = 8
    else:
        hyper.update(learning_starts=16, batch_size=16, buffer_size=1000)
    path = train_sb3(algorithm, ENV_KWARGS, 2, 48, 0, tmp_path, hyper)
    meta = json.loads((path / "metadata.json").read_text())
    obs = observation_sample(meta["observation_size"], n=200)
    expected = reference_actions(path, obs)
    np.testing.assert_allclose(sb3_host_policy(path).function(obs), expected, atol=1e-6)
    onnx_path = export_onnx(path, tmp_path / f"{algorithm}.onnx")
    actions = onnx_host_policy(onnx_path, algorithm).function(obs)
    assert np.abs(actions - expected).max() <= 1e-5


@pytest.mark.slow
def test_recurrent_ppo_host_policy_not_exported(tmp_path: Path) -> None:
    hyper = {
        "n_steps": 16,
        "batch_size": 32,
        "n_epochs": 1,
        "policy_kwargs": {"lstm_hidden_size": 8},
    }
    path = train_sb3("recurrent_ppo", ENV_KWARGS, 2, 32, 0, tmp_path, hyper)
    meta = json.loads((path / "metadata.json").read_text())
    obs = observation_sample(meta["observation_size"], n=16)
    host = sb3_host_policy(path, "lstm")
    first = host.function(obs)
    assert first.shape == (16, 10) and np.all(np.abs(first) <= 1)
    host.function.reset()  # type: ignore[attr-defined]
    np.testing.assert_allclose(host.function(obs), first, atol=1e-6)
    with pytest.raises(NotImplementedError, match="recurrent_ppo"):
        export_onnx(path, tmp_path / "lstm.onnx")

"""Stable-Baselines3 agents on the batched environment (``envs.make_sb3_vec``).

    path = train_sb3("ppo", {"n_matches": 10}, num_envs=64, total_timesteps=1_000_000,
                     seed=0, out_dir=Path("outputs/sb3_ppo"))
    policy = sb3_host_policy(path)            # agents.policy.HostPolicy for the evaluator

Training: ``VecMonitor`` (episode returns in the logs) → ``VecNormalize`` (observations
normalised by running statistics, rewards optionally) → the SB3 algorithm. Evaluation
during training: SB3's ``EvalCallback`` on a separate ``make_sb3_vec`` whose
``VecNormalize`` is frozen (``training=False``) and synced from the training one at every
evaluation; the evaluation environments are seeded with ``seed + 1`` and re-seeded at
every reset, so every evaluation replays the same slates (common random numbers across
evaluations). ``eval_freq`` and ``checkpoint_freq`` count *environment steps* (all
environments together); they are converted to SB3's per-call frequencies.

The final policy is saved without pickle (``agents.checkpoint``): the policy's
``state_dict`` under ``policy/…``, the observation statistics under ``normaliser/mean``,
``normaliser/var`` (float64, as VecNormalize keeps them), and in ``metadata.json`` the
algorithm, the policy constructor (spaces and kwargs, JSON-encoded: classes by dotted
name), the hyper-parameters, the environment options and ``observation_names``.
``load_sb3_policy`` rebuilds the policy class from that metadata.

Intermediate checkpoints (``checkpoint_freq`` > 0) are SB3's own ``CheckpointCallback``
files (zip + pickled ``VecNormalize``): they are for resuming training with SB3 only,
never for deployment or evaluation; only the final directory is the portable format.

Recurrent PPO: ``sb3_host_policy`` keeps the LSTM state across calls (one state per row of
the batch). A row's state restarts when its ``progress`` observation column goes down (a
new episode: progress rises monotonically within an episode), when the batch size
changes, or when ``function.reset()`` is called. It is not exported to ONNX
(``policies.export``): the graph would need the LSTM state and episode-start flags as
inputs and outputs, which the ``HostPolicy`` interface does not carry.
"""

from __future__ import annotations

import importlib
import inspect
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

import envs
from agents.checkpoint import check_layout, load_tensors, save_tensors
from agents.policy import HostPolicy

SB3_ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    "ppo": PPO,
    "a2c": A2C,
    "sac": SAC,
    "td3": TD3,
    "recurrent_ppo": RecurrentPPO,
}

#: The SB3 policy alias used for each algorithm (flat Box observations).
POLICY_ALIASES: dict[str, str] = {
    "ppo": "MlpPolicy",
    "a2c": "MlpPolicy",
    "sac": "MlpPolicy",
    "td3": "MlpPolicy",
    "recurrent_ppo": "MlpLstmPolicy",
}

#: Constructor arguments ``train_sb3`` sets itself (not accepted as hyper-parameters).
RESERVED_ARGUMENTS = frozenset({"self", "policy", "env", "seed", "_init_setup_model"})

#: Modules whose classes may be named in a checkpoint's policy constructor.
_IMPORTABLE_PREFIXES = ("torch.", "stable_baselines3.", "sb3_contrib.")

_ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "tanh": torch.nn.Tanh,
    "relu": torch.nn.ReLU,
    "elu": torch.nn.ELU,
    "gelu": torch.nn.GELU,
    "silu": torch.nn.SiLU,
    "leaky_relu": torch.nn.LeakyReLU,
}


# --------------------------------------------------------------------------- validation


def algorithm_class(algorithm: str) -> type[BaseAlgorithm]:
    """The SB3 class of ``algorithm``; unknown names raise, listing the valid ones."""
    if algorithm not in SB3_ALGORITHMS:
        raise ValueError(
            f"unknown SB3 algorithm {algorithm!r}; valid: {', '.join(sorted(SB3_ALGORITHMS))}"
        )
    return SB3_ALGORITHMS[algorithm]


def valid_hyperparameters(algorithm: str) -> list[str]:
    """Constructor arguments of ``algorithm`` that ``train_sb3`` accepts."""
    signature = inspect.signature(algorithm_class(algorithm).__init__)
    return sorted(
        name
        for name, parameter in signature.parameters.items()
        if name not in RESERVED_ARGUMENTS
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    )


def _policy_class(algorithm: str) -> type[BasePolicy]:
    cls = algorithm_class(algorithm)
    return cls.policy_aliases[POLICY_ALIASES[algorithm]]  # type: ignore[return-value]


def _resolve_policy_kwargs(algorithm: str, policy_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Check ``policy_kwargs`` keys against the policy class; activation names → classes."""
    policy_cls = _policy_class(algorithm)
    signature = inspect.signature(policy_cls.__init__)
    takes_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    allowed = set(signature.parameters) - {"self", "observation_space", "action_space"}
    unknown = sorted(set(policy_kwargs) - allowed)
    if unknown and not takes_any:
        raise ValueError(
            f"unknown policy_kwargs {unknown} for algorithm {algorithm!r} "
            f"({policy_cls.__name__}); valid: {sorted(allowed - {'lr_schedule'})}"
        )
    resolved = dict(policy_kwargs)
    activation = resolved.get("activation_fn")
    if isinstance(activation, str):
        if activation.lower() not in _ACTIVATIONS:
            raise ValueError(
                f"policy_kwargs.activation_fn: unknown activation {activation!r}; "
                f"valid: {sorted(_ACTIVATIONS)}"
            )
        resolved["activation_fn"] = _ACTIVATIONS[activation.lower()]
    return resolved


def check_hyperparameters(algorithm: str, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Validate ``hyperparameters`` for ``algorithm`` before anything is built.

    Errors name the offending key and the algorithm. Returns the hyper-parameters with
    ``policy_kwargs`` resolved (activation names such as ``"relu"`` → torch classes).
    """
    cls = algorithm_class(algorithm)
    reserved = sorted(set(hyperparameters) & RESERVED_ARGUMENTS)
    if reserved:
        raise ValueError(
            f"hyper-parameter {reserved[0]!r} of {algorithm!r} ({cls.__name__}) is set by "
            "train_sb3 itself (use its seed argument / env_kwargs)"
        )
    valid = valid_hyperparameters(algorithm)
    unknown = sorted(set(hyperparameters) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown hyper-parameter {unknown[0]!r} for algorithm {algorithm!r} "
            f"({cls.__name__}); valid: {', '.join(valid)}"
        )
    resolved = dict(hyperparameters)
    if resolved.get("policy_kwargs") is not None:
        if not isinstance(resolved["policy_kwargs"], dict):
            raise ValueError(f"hyper-parameter 'policy_kwargs' of {algorithm!r}: expected a dict")
        resolved["policy_kwargs"] = _resolve_policy_kwargs(algorithm, resolved["policy_kwargs"])
    return resolved


# --------------------------------------------------------------------------- JSON encoding


def json_safe(value: Any) -> Any:
    """A JSON-serialisable copy of ``value`` (classes by dotted name, spaces as dicts).

    Values with no JSON form (callables, arbitrary objects) become their ``repr``: the
    metadata records them but ``decode_json`` cannot rebuild them.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, type):
        return {"__class__": f"{value.__module__}.{value.__qualname__}"}
    if isinstance(value, gym.spaces.Box):
        return {
            "__space__": "Box",
            "low": _compact(value.low),
            "high": _compact(value.high),
            "shape": list(value.shape),
            "dtype": str(value.dtype),
        }
    return repr(value)


def _compact(array: np.ndarray) -> Any:
    """A scalar when every entry is equal (a Box's uniform bound), else a list."""
    flat = np.asarray(array).ravel()
    if flat.size and np.all(flat == flat[0]):
        return float(flat[0])
    return [float(v) for v in flat]


def decode_json(value: Any) -> Any:
    """Inverse of ``json_safe`` for classes (torch / SB3 modules only) and Box spaces."""
    if isinstance(value, list):
        return [decode_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"__class__"}:
        dotted = value["__class__"]
        if not dotted.startswith(_IMPORTABLE_PREFIXES):
            raise ValueError(
                f"checkpoint names class {dotted!r}: only classes from "
                f"{', '.join(p.rstrip('.') for p in _IMPORTABLE_PREFIXES)} are loaded"
            )
        module_name, _, qualname = dotted.rpartition(".")
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj
    if value.get("__space__") == "Box":
        shape = tuple(value["shape"])
        dtype = np.dtype(value["dtype"])
        low = np.broadcast_to(np.asarray(value["low"], dtype), shape).copy()
        high = np.broadcast_to(np.asarray(value["high"], dtype), shape).copy()
        return gym.spaces.Box(low, high, shape, dtype)
    return {k: decode_json(v) for k, v in value.items()}


# --------------------------------------------------------------------------- training


def _every(env_steps: int, num_envs: int) -> int:
    """SB3 callback frequency (calls = vector steps) for a frequency in env steps."""
    return max(env_steps // num_envs, 1)


def _effective_hyperparameters(model: BaseAlgorithm, algorithm: str) -> dict[str, Any]:
    """The model's values of its constructor arguments (those it keeps as attributes)."""
    effective: dict[str, Any] = {}
    for name in valid_hyperparameters(algorithm):
        if name in ("policy_kwargs", "tensorboard_log", "verbose") or not hasattr(model, name):
            continue
        value = getattr(model, name)
        if callable(value) and not isinstance(value, type):
            continue  # schedules (clip_range, learning rate): the configured value is recorded
        effective[name] = json_safe(value)
    return effective


def train_sb3(
    algorithm: str,
    env_kwargs: dict[str, Any],
    num_envs: int,
    total_timesteps: int,
    seed: int,
    out_dir: Path,
    hyperparameters: dict[str, Any] | None = None,
    eval_freq: int = 0,
    eval_episodes: int = 4,
    checkpoint_freq: int = 0,
    progress_bar: bool = False,
    normalize_reward: bool = False,
    clip_obs: float = 10.0,
) -> Path:
    """Train ``algorithm`` on ``envs.make_sb3_vec(num_envs, **env_kwargs)``; see module doc.

    ``eval_freq`` / ``checkpoint_freq``: environment steps between evaluations /
    intermediate SB3 checkpoints (0 = none). Returns the final checkpoint directory
    ``out_dir / "policy"``.
    """
    cls = algorithm_class(algorithm)
    hyperparameters = dict(hyperparameters or {})
    resolved = check_hyperparameters(algorithm, hyperparameters)
    resolved.setdefault("device", "cpu")
    if total_timesteps < 1:
        raise ValueError(f"total_timesteps: expected ≥ 1, got {total_timesteps}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    raw = envs.make_sb3_vec(num_envs, **env_kwargs)
    vec = VecNormalize(
        VecMonitor(raw),
        norm_obs=True,
        norm_reward=normalize_reward,
        clip_obs=clip_obs,
        gamma=float(resolved.get("gamma", 0.99)),
    )
    model = cls(POLICY_ALIASES[algorithm], vec, seed=seed, **resolved)

    callbacks: list[BaseCallback] = []
    eval_vec: VecNormalize | None = None
    if eval_freq > 0:
        eval_raw = envs.make_sb3_vec(max(1, min(eval_episodes, num_envs)), **env_kwargs)
        eval_raw.seed(seed + 1)
        eval_vec = VecNormalize(
            VecMonitor(eval_raw),
            training=False,
            norm_obs=True,
            norm_reward=False,
            clip_obs=clip_obs,
        )
        callbacks.append(
            EvalCallback(
                eval_vec,
                n_eval_episodes=eval_episodes,
                eval_freq=_every(eval_freq, num_envs),
                log_path=str(out_dir / "eval"),
                best_model_save_path=None,
                deterministic=True,
                verbose=0,
            )
        )
    if checkpoint_freq > 0:
        callbacks.append(
            CheckpointCallback(
                save_freq=_every(checkpoint_freq, num_envs),
                save_path=str(out_dir / "sb3_checkpoints"),
                name_prefix=algorithm,
                save_vecnormalize=True,
            )
        )

    start = time.perf_counter()
    model.learn(total_timesteps=total_timesteps, callback=callbacks, progress_bar=progress_bar)
    seconds = time.perf_counter() - start

    policy_kwargs = model.policy_kwargs
    metadata = {
        "framework": "sb3",
        "algorithm": algorithm,
        "policy_class": POLICY_ALIASES[algorithm],
        "policy_kwargs": json_safe(policy_kwargs),
        "policy_constructor": json_safe(
            {**model.policy._get_constructor_parameters(), **policy_kwargs}
        ),
        "hyperparameters": json_safe(hyperparameters),
        "effective_hyperparameters": _effective_hyperparameters(model, algorithm),
        "normaliser": {
            "clip_obs": float(vec.clip_obs),
            "epsilon": float(vec.epsilon),
            "norm_reward": bool(normalize_reward),
        },
        "env": json_safe(env_kwargs),
        "observation_names": list(raw.observation_names),
        "observation_size": int(raw.observation_space.shape[0]),
        "action_size": int(raw.action_space.shape[0]),
        "run": {
            "num_envs": num_envs,
            "total_timesteps": total_timesteps,
            "env_steps": int(model.num_timesteps),
            "seed": seed,
            "seconds": seconds,
            "stable_baselines3": stable_baselines3.__version__,
            "torch": torch.__version__,
        },
    }
    tensors = {
        f"policy/{name}": value.detach().cpu().numpy()
        for name, value in model.policy.state_dict().items()
    }
    tensors["normaliser/mean"] = np.asarray(vec.obs_rms.mean, np.float64)
    tensors["normaliser/var"] = np.asarray(vec.obs_rms.var, np.float64)
    tensors["normaliser/count"] = np.asarray([vec.obs_rms.count], np.float64)
    path = save_tensors(out_dir / "policy", tensors, metadata)
    vec.close()
    if eval_vec is not None:
        eval_vec.close()
    return path


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class SB3Normaliser:
    """VecNormalize's frozen observation statistics (float64, as SB3 keeps them)."""

    mean: np.ndarray
    var: np.ndarray
    clip_obs: float
    epsilon: float

    def normalise(self, observation: np.ndarray) -> np.ndarray:
        """Exactly ``VecNormalize.normalize_obs``: clip((obs − mean)/sqrt(var + ε)), float32."""
        scaled = (np.asarray(observation) - self.mean) / np.sqrt(self.var + self.epsilon)
        return np.clip(scaled, -self.clip_obs, self.clip_obs).astype(np.float32)


def _constant_schedule(_: float) -> float:
    return 0.0


def load_sb3_policy(
    checkpoint_dir: Path, observation_names: list[str] | None = None
) -> tuple[BasePolicy, SB3Normaliser, dict[str, Any]]:
    """(SB3 policy in eval mode, normaliser, metadata) of a ``train_sb3`` checkpoint.

    The policy class is rebuilt from the saved constructor (spaces, net_arch, activation
    …) and the state dict loaded strictly. With ``observation_names``, the checkpoint's
    layout must match (``agents.checkpoint.check_layout``).
    """
    tensors, metadata = load_tensors(Path(checkpoint_dir))
    if metadata.get("framework") != "sb3":
        raise ValueError(
            f"checkpoint {checkpoint_dir}: framework {metadata.get('framework')!r}, expected 'sb3'"
        )
    if observation_names is not None:
        check_layout(metadata, observation_names)
    algorithm = metadata["algorithm"]
    policy_cls = _policy_class(algorithm)
    constructor = decode_json(metadata["policy_constructor"])
    constructor["lr_schedule"] = _constant_schedule
    policy = policy_cls(**constructor)
    state = {
        name[len("policy/") :]: torch.from_numpy(np.array(value))
        for name, value in tensors.items()
        if name.startswith("policy/")
    }
    policy.load_state_dict(state, strict=True)
    policy.set_training_mode(False)
    policy.eval()
    for key in ("normaliser/mean", "normaliser/var"):
        if key not in tensors:
            raise ValueError(f"checkpoint {checkpoint_dir}: missing tensor {key!r}")
    normaliser = SB3Normaliser(
        mean=np.asarray(tensors["normaliser/mean"], np.float64),
        var=np.asarray(tensors["normaliser/var"], np.float64),
        clip_obs=float(metadata["normaliser"]["clip_obs"]),
        epsilon=float(metadata["normaliser"]["epsilon"]),
    )
    return policy, normaliser, metadata


class _RecurrentActions:
    """Host function of a recurrent policy: LSTM state kept across calls (module doc)."""

    def __init__(
        self, policy: BasePolicy, normaliser: SB3Normaliser, observation_names: list[str]
    ) -> None:
        self.policy = policy
        self.normaliser = normaliser
        self.progress_column = (
            observation_names.index("progress") if "progress" in observation_names else None
        )
        self.state: tuple[np.ndarray, ...] | None = None
        self.last_progress: np.ndarray | None = None

    def reset(self) -> None:
        self.state = None
        self.last_progress = None

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        observation = np.asarray(observation, np.float32)
        batch = observation.shape[0]
        if self.state is None or self.state[0].shape[1] != batch:
            self.reset()
        if self.last_progress is None or self.progress_column is None:
            episode_start = np.full(batch, self.last_progress is None)
        else:
            episode_start = observation[:, self.progress_column] < self.last_progress
        if self.progress_column is not None:
            self.last_progress = observation[:, self.progress_column].copy()
        else:
            self.last_progress = np.zeros(batch, np.float32)
        actions, self.state = self.policy.predict(
            self.normaliser.normalise(observation),
            state=self.state,
            episode_start=episode_start,
            deterministic=True,
        )
        return np.asarray(actions, np.float32)


def sb3_host_policy(
    checkpoint_dir: Path, name: str = "ppo", observation_names: list[str] | None = None
) -> HostPolicy:
    """A ``HostPolicy`` of a ``train_sb3`` checkpoint: deterministic, normalised as in training.

    Actions: ``policy.predict(normalise(obs), deterministic=True)`` — clipped to the
    action Box (or unscaled from tanh for SAC/TD3), as SB3 does.
    """
    policy, normaliser, metadata = load_sb3_policy(checkpoint_dir, observation_names)
    if metadata["algorithm"] == "recurrent_ppo":
        return HostPolicy(
            name, _RecurrentActions(policy, normaliser, list(metadata["observation_names"]))
        )

    def act(observation: np.ndarray) -> np.ndarray:
        actions, _ = policy.predict(normaliser.normalise(observation), deterministic=True)
        return np.asarray(actions, np.float32)

    return HostPolicy(name, act)

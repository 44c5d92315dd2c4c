"""Vectorised environments: every environment stepped in one jitted, vmapped call.

- ``make_vec(num_envs, **kwargs)`` → ``FootballMarketVecEnv``, a ``gymnasium.vector.VectorEnv``
  with ``autoreset_mode = SAME_STEP``: a finished environment is reset inside the same
  ``step``; its last observation is ``infos["final_obs"][i]`` (mask ``infos["_final_obs"]``).
- ``make_sb3_vec(num_envs, **kwargs)`` → ``FootballMarketSB3VecEnv``, a native
  Stable-Baselines3 ``VecEnv`` over the same batched core (``terminal_observation`` in
  the info of a finished environment, as SB3 expects). No per-environment Python loop in
  either: one device call per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from envs import functional
from envs.config import make_params
from envs.functional import OBS_BOUND
from envs.gym_env import validate_action

#: Info entries returned per environment by the vector envs (small, numeric).
VECTOR_INFO_KEYS = ("equity", "drawdown", "gamma", "mode", "settled_pnl", "round_index")


class _BatchedCore:
    """The jitted, vmapped reset/step shared by both vector interfaces."""

    def __init__(self, num_envs: int, **kwargs: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs: expected ≥ 1, got {num_envs}")
        self.num_envs = num_envs
        self.params = make_params(**kwargs)
        size = functional.observation_size(self.params)
        self.single_observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (size,), np.float32)
        self.single_action_space = gym.spaces.Box(
            -1.0, 1.0, (self.params.market.n_matches * 5,), np.float32
        )
        self.observation_names = functional.observation_names(self.params)
        params = self.params

        def reset_all(key: jax.Array) -> tuple[jax.Array, functional.EnvState]:
            return jax.vmap(functional.reset, in_axes=(0, None))(
                jax.random.split(key, num_envs), params
            )

        def step_all(
            key: jax.Array, state: functional.EnvState, actions: jax.Array
        ) -> tuple[Any, ...]:
            obs, state, reward, done, info = jax.vmap(
                functional.step_autoreset, in_axes=(0, 0, 0, None)
            )(jax.random.split(key, num_envs), state, actions, params)
            small = {name: info[name] for name in VECTOR_INFO_KEYS}
            return obs, state, reward, done, info["final_observation"], small

        self._reset_all = jax.jit(reset_all)
        self._step_all = jax.jit(step_all)
        self.key = jax.random.PRNGKey(0)
        self.state: functional.EnvState | None = None

    def reset(self, seed: int | None) -> np.ndarray:
        if seed is not None:
            self.key = jax.random.PRNGKey(seed)
        self.key, key = jax.random.split(self.key)
        obs, self.state = self._reset_all(key)
        return np.asarray(obs)

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        actions = validate_action(actions, (self.num_envs, *self.single_action_space.shape))
        self.key, key = jax.random.split(self.key)
        obs, self.state, reward, done, final_obs, info = self._step_all(
            key, self.state, jnp.asarray(actions)
        )
        return (
            np.asarray(obs),
            np.asarray(reward),
            np.asarray(done),
            np.asarray(final_obs),
            {k: np.asarray(v) for k, v in info.items()},
        )


class FootballMarketVecEnv(VectorEnv):
    """Gymnasium ``VectorEnv`` over ``num_envs`` environments (same-step autoreset)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int, **kwargs: Any) -> None:
        self._core = _BatchedCore(num_envs, **kwargs)
        self.num_envs = num_envs
        self.single_observation_space = self._core.single_observation_space
        self.single_action_space = self._core.single_action_space
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.observation_names = self._core.observation_names
        self.params = self._core.params

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        del options
        return self._core.reset(seed), {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, reward, done, final_obs, info = self._core.step(actions)
        infos: dict[str, Any] = dict(info)
        infos["final_obs"] = final_obs
        infos["_final_obs"] = done
        truncated = np.zeros_like(done)
        return obs, reward.astype(np.float32), done, truncated, infos


class FootballMarketSB3VecEnv(VecEnv):
    """Native Stable-Baselines3 ``VecEnv`` over the batched JAX core."""

    def __init__(self, num_envs: int, **kwargs: Any) -> None:
        self._core = _BatchedCore(num_envs, **kwargs)
        super().__init__(
            num_envs, self._core.single_observation_space, self._core.single_action_space
        )
        self.observation_names = self._core.observation_names
        self.params = self._core.params
        self._actions: np.ndarray | None = None
        self._seed: int | None = None

    def reset(self) -> VecEnvObs:
        return self._core.reset(self._seed)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async must come before step_wait"
        obs, reward, done, final_obs, info = self._core.step(self._actions)
        infos: list[dict[str, Any]] = [
            {k: v[i].item() for k, v in info.items()} for i in range(self.num_envs)
        ]
        for i in np.flatnonzero(done):
            infos[i]["terminal_observation"] = final_obs[i]
            infos[i]["TimeLimit.truncated"] = False
        return obs, reward.astype(np.float32), done, infos

    def close(self) -> None:
        return None

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        self._seed = seed
        return [seed] * self.num_envs

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any
    ) -> list[Any]:
        raise AttributeError(f"{method_name}: the batched environments have no per-env methods")

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)


def make_vec(num_envs: int, **kwargs: Any) -> FootballMarketVecEnv:
    """A Gymnasium ``VectorEnv`` of ``num_envs`` environments (kwargs as for the single env)."""
    return FootballMarketVecEnv(num_envs, **kwargs)


def make_sb3_vec(num_envs: int, **kwargs: Any) -> FootballMarketSB3VecEnv:
    """A native Stable-Baselines3 ``VecEnv`` of ``num_envs`` environments."""
    return FootballMarketSB3VecEnv(num_envs, **kwargs)

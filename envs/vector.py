"""Vectorised environments: every environment stepped in one jitted, vmapped call.

- ``make_vec(num_envs, **kwargs)`` → ``FootballMarketVecEnv``, a ``gymnasium.vector.VectorEnv``
  with ``autoreset_mode = SAME_STEP``: a finished environment is reset inside the same
  ``step``; its last observation is ``infos["final_obs"][i]`` (mask ``infos["_final_obs"]``).
- ``make_sb3_vec(num_envs, **kwargs)`` → ``FootballMarketSB3VecEnv``, a native
  Stable-Baselines3 ``VecEnv`` over the same batched core (``terminal_observation`` in
  the info of a finished environment, as SB3 expects). No per-environment Python loop in
  either: one device call per step, plus one more on the (rare) steps where an episode
  ends, which resets only the finished environments.

Both take the single environment's keyword arguments, including
``information="predictor", predictor=f``: ``f(observations [N, obs]) -> probabilities
[N, M, 5]`` (validated like the single environment's predictor) is called on the current
observations before every step and replaces the oracle information of all N
environments (``functional.step(..., model_probability=...)``); after a reset the model
columns start at the market's probabilities.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
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
from envs.gym_env import check_predictor_option, validate_action, validate_model_probability

#: Info entries returned per environment by the vector envs (small, numeric).
VECTOR_INFO_KEYS = ("equity", "drawdown", "gamma", "mode", "settled_pnl", "round_index")


class _BatchedCore:
    """The jitted, vmapped reset/step shared by both vector interfaces.

    A step is one jitted call of ``vmap(functional.step)`` (no reset inside). Episodes
    last a fixed number of ticks (or end on bankruptcy), so resets are rare: only when
    the step's ``done`` (on the host anyway) has a finished environment does a second
    jitted call reset them (a batch reset selected by the ``done`` mask: one compilation,
    whatever the number of finished environments, at the cost of one batch reset per
    episode end).
    """

    def __init__(
        self,
        num_envs: int,
        predictor: Callable[[np.ndarray], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs: expected ≥ 1, got {num_envs}")
        check_predictor_option(predictor, kwargs, "callable(observations [N, obs]) -> [N, M, 5]")
        self.num_envs = num_envs
        self.predictor = predictor
        self.params = make_params(**kwargs)
        size = functional.observation_size(self.params)
        self.single_observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (size,), np.float32)
        self.single_action_space = gym.spaces.Box(
            -1.0, 1.0, (self.params.market.n_matches * 5,), np.float32
        )
        self.observation_names = functional.observation_names(self.params)
        self.model_shape = (num_envs, self.params.market.n_matches, 5)
        params = self.params
        uses_predictor = predictor is not None

        def fresh(keys: jax.Array) -> tuple[jax.Array, functional.EnvState]:
            obs, state = jax.vmap(functional.reset, in_axes=(0, None))(keys, params)
            if uses_predictor:
                # No oracle information before the predictor has spoken: start from p_mkt
                # (as the single environment does).
                state = dataclasses.replace(state, model_probability=state.market.implied)
                obs = jax.vmap(functional.get_obs, in_axes=(0, None))(state, params)
            return obs, state

        def reset_all(key: jax.Array) -> tuple[jax.Array, functional.EnvState]:
            return fresh(jax.random.split(key, num_envs))

        def step_all(
            key: jax.Array,
            count: jax.Array,
            state: functional.EnvState,
            actions: jax.Array,
            model: jax.Array | None,
        ) -> tuple[Any, ...]:
            keys = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, count), 0), num_envs)
            obs, state, reward, done, info = jax.vmap(
                functional.step, in_axes=(0, 0, 0, None, None if model is None else 0)
            )(keys, state, actions, params, model)
            small = {name: info[name] for name in VECTOR_INFO_KEYS}
            return obs, state, reward, done, small

        def reset_some(
            key: jax.Array,
            count: jax.Array,
            state: functional.EnvState,
            obs: jax.Array,
            done: jax.Array,
        ) -> tuple[jax.Array, functional.EnvState]:
            base = jax.random.fold_in(jax.random.fold_in(key, count), 1)
            new_obs, new_state = fresh(jax.random.split(base, num_envs))

            def select(new: jax.Array, old: jax.Array) -> jax.Array:
                return jnp.where(done.reshape(done.shape + (1,) * (old.ndim - 1)), new, old)

            return select(new_obs, obs), jax.tree.map(select, new_state, state)

        self._reset_all = jax.jit(reset_all)
        self._step_all = jax.jit(step_all)
        self._reset_some = jax.jit(reset_some)
        self.key = jax.random.PRNGKey(0)
        self.count = 0
        self.state: functional.EnvState | None = None
        self.obs: np.ndarray | None = None

    def reset(self, seed: int | None) -> np.ndarray:
        if seed is not None:
            self.key = jax.random.PRNGKey(seed)
        self.key, key = jax.random.split(self.key)
        self.count = 0
        obs, self.state = self._reset_all(key)
        self.obs = np.asarray(obs)
        return self.obs

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        if self.state is None or self.obs is None:
            raise RuntimeError("call reset() before step()")
        actions = validate_action(actions, (self.num_envs, *self.single_action_space.shape))
        model = None
        if self.predictor is not None:
            model = validate_model_probability(self.predictor(self.obs), self.model_shape)
        count = np.int32(self.count)
        self.count += 1
        obs, self.state, reward, done, info = self._step_all(
            self.key, count, self.state, actions, model
        )
        done_host = np.asarray(done)
        final_obs = np.asarray(obs)
        next_obs = final_obs
        if done_host.any():
            reset_obs, self.state = self._reset_some(self.key, count, self.state, obs, done)
            next_obs = np.asarray(reset_obs)
        self.obs = next_obs
        return (
            next_obs,
            np.asarray(reward),
            done_host,
            final_obs,
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
    """A Gymnasium ``VectorEnv`` of ``num_envs`` environments (kwargs as for the single env;
    ``predictor=f`` with ``information="predictor"``: f maps [N, obs] to [N, M, 5])."""
    return FootballMarketVecEnv(num_envs, **kwargs)


def make_sb3_vec(num_envs: int, **kwargs: Any) -> FootballMarketSB3VecEnv:
    """A native Stable-Baselines3 ``VecEnv`` of ``num_envs`` environments (kwargs as for
    ``make_vec``, ``predictor=`` included)."""
    return FootballMarketSB3VecEnv(num_envs, **kwargs)

"""``tetra/FootballMarket-v0``: the single-agent Gymnasium environment over ``envs.functional``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from envs import functional
from envs.config import make_params
from envs.functional import OBS_BOUND

#: Info keys that evaluation may read and policies must not (they reveal the oracle).
PRIVILEGED_INFO_KEYS = ("oracle_true_probability",)


class FootballMarketEnv(gym.Env[np.ndarray, np.ndarray]):
    """One slate (or a season of slates) of simulated in-play football betting.

    Observation: ``Box`` float32 [M·len(MATCH_COLUMNS) + len(GLOBAL_COLUMNS)], columns in
    ``observation_names``. Action: ``Box`` [-1, 1] of shape [M·5] (see
    ``envs.functional``: a > 0 asks for a × per_bet_cap of the bankroll on a selection;
    every action is projected onto the caps). NaN/inf actions raise ``ValueError``
    naming the index; finite values outside [-1, 1] are clipped. Reward: Δ log equity.
    ``info["oracle_true_probability"]`` is for evaluation only.
    """

    metadata = {"render_modes": []}

    def __init__(self, predictor: Callable[[np.ndarray], Any] | None = None, **kwargs: Any) -> None:
        check_predictor_option(predictor, kwargs, "callable(observation) -> [n_matches, 5]")
        self.predictor = predictor
        self.params = make_params(**kwargs)
        self.n_matches = self.params.market.n_matches
        size = functional.observation_size(self.params)
        self.observation_space = gym.spaces.Box(-OBS_BOUND, OBS_BOUND, (size,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.n_matches * 5,), np.float32)
        self.observation_names = functional.observation_names(self.params)
        self._reset = jax.jit(functional.reset)
        self._step = jax.jit(functional.step)
        self._key = jax.random.PRNGKey(0)
        self._state: functional.EnvState | None = None
        self._observation: np.ndarray | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._key = jax.random.PRNGKey(seed)
        self._key, key = jax.random.split(self._key)
        obs, self._state = self._reset(key, self.params)
        if self.predictor is not None:
            # No oracle information before the predictor has spoken: start from p_mkt.
            self._state = dataclasses.replace(
                self._state, model_probability=self._state.market.implied
            )
            obs = functional.get_obs(self._state, self.params)
        self._observation = np.asarray(obs)
        return self._observation, {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        action = validate_action(action, self.action_space.shape)
        self._key, key = jax.random.split(self._key)
        model = None
        if self.predictor is not None:
            assert self._observation is not None
            model = validate_model_probability(
                self.predictor(self._observation), (self.n_matches, 5)
            )
        obs, self._state, reward, done, info = self._step(
            key, self._state, action, self.params, model
        )
        self._observation = np.asarray(obs)
        return (
            self._observation,
            float(reward),
            bool(done),
            False,
            {k: np.asarray(v) for k, v in info.items()},
        )


def check_predictor_option(predictor: Any, kwargs: dict[str, Any], signature: str) -> None:
    """``information='predictor'`` needs a predictor, and a predictor needs that option."""
    if kwargs.get("information") == "predictor" and predictor is None:
        raise ValueError(f"information='predictor' needs predictor={signature} probabilities")
    if predictor is not None and kwargs.get("information", "predictor") != "predictor":
        raise ValueError("predictor= is only used with information='predictor'")


def validate_model_probability(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A predictor's output: shape [M, 5] (or [N, M, 5] for N environments), in [0, 1],
    1X2 and O/U each summing to 1."""
    array = np.asarray(value, dtype=np.float32)
    if array.shape != tuple(shape):
        raise ValueError(f"predictor output: expected shape {tuple(shape)}, got {array.shape}")
    bad = ~np.isfinite(array) | (array < 0) | (array > 1)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"predictor output: expected probabilities in [0, 1], got {array[index]!r} at {index}"
        )
    for name, columns in (("1X2", slice(0, 3)), ("over/under", slice(3, 5))):
        sums = array[..., columns].sum(-1)
        wrong = np.abs(sums - 1.0) > 1e-3
        if wrong.any():
            where = tuple(int(i) for i in np.argwhere(wrong)[0])
            place = f"match {where[-1]}" + (f" of environment {where[0]}" if len(where) > 1 else "")
            raise ValueError(
                f"predictor output: {name} probabilities of {place} sum to "
                f"{sums[where]:.4f}, expected 1"
            )
    return array


def validate_action(action: Any, shape: tuple[int, ...] | None) -> np.ndarray:
    """A finite float32 action of ``shape``; errors say what was expected and given."""
    array = np.asarray(action, dtype=np.float32)
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"action: expected shape {tuple(shape)}, got {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"action: expected finite values, got {array[index]!r} at index "
            f"{index[0] if len(index) == 1 else index}"
        )
    return array

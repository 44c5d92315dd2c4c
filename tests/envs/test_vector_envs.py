"""Vector environments: Gymnasium's and SB3's vector interfaces, batched same-step
autoreset, host-side partial resets, the predictor hook."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecCheckNan

import envs
from envs import functional


def test_sb3_vec_env_checks() -> None:
    vec = VecCheckNan(envs.make_sb3_vec(4, n_matches=5), raise_exception=True)
    obs = vec.reset()
    assert obs.shape == (4, vec.observation_space.shape[0])
    finished = 0
    for _ in range(130):
        actions = np.stack([vec.action_space.sample() for _ in range(4)])
        obs, reward, done, infos = vec.step(actions)
        assert reward.shape == (4,) and done.shape == (4,)
        for i in np.flatnonzero(done):
            assert infos[i]["terminal_observation"].shape == obs.shape[1:]
            finished += 1
    assert finished >= 4


def test_gymnasium_vector_env_same_step_autoreset() -> None:
    vec = envs.make_vec(3, n_matches=4)
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    obs, _ = vec.reset(seed=1)
    assert obs.shape == (3, vec.single_observation_space.shape[0])
    seen_done = False
    for _ in range(130):
        obs, reward, terminated, truncated, infos = vec.step(vec.action_space.sample())
        if terminated.any():
            seen_done = True
            assert infos["_final_obs"].tolist() == terminated.tolist()
            # The returned observation is a fresh episode's: pre-match, progress 0.
            i = int(np.flatnonzero(terminated)[0])
            names = vec.observation_names
            assert obs[i, names.index("m0_pre_match")] == 1.0
    assert seen_done


def test_step_autoreset_batch_matches_vmapped_step_autoreset() -> None:
    """The batch-level lax.cond reset gives what a vmapped step_autoreset gives."""
    params = envs.make_params(n_matches=2)
    num_envs = 3
    keys = jax.random.split(jax.random.PRNGKey(4), num_envs)
    _, states = jax.vmap(functional.reset, in_axes=(0, None))(keys, params)
    batch = jax.jit(functional.step_autoreset_batch)
    vmapped = jax.jit(jax.vmap(functional.step_autoreset, in_axes=(0, 0, 0, None)))
    ref_states = states
    rng = np.random.default_rng(0)
    finished = 0
    for t in range(params.market.pre_match_ticks + 116):
        actions = jnp.asarray(rng.uniform(-1, 1, (num_envs, 10)), jnp.float32)
        key = jax.random.PRNGKey(100 + t)
        obs, states, reward, done, info = batch(key, states, actions, params)
        ref_obs, ref_states, ref_reward, ref_done, ref_info = vmapped(
            jax.random.split(key, num_envs), ref_states, actions, params
        )
        np.testing.assert_array_equal(done, ref_done)
        np.testing.assert_allclose(obs, ref_obs, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(reward, ref_reward, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            info["final_observation"], ref_info["final_observation"], rtol=1e-5, atol=1e-5
        )
        finished += int(done.sum())
        if bool(done.any()):
            assert int(states.steps[int(np.flatnonzero(done)[0])]) == 0
            break
    assert finished > 0


def test_vector_env_resets_only_finished_envs() -> None:
    """The host-side reset touches the finished environments and no other."""
    from envs.vector import _BatchedCore

    core = _BatchedCore(4, n_matches=2)
    core.reset(seed=0)
    for _ in range(3):
        core.step(np.zeros((4, 10), np.float32))
    assert core.state is not None
    before = jax.tree.map(np.asarray, core.state)
    obs = jnp.asarray(core.obs)
    done = np.array([False, False, True, False])
    new_obs, state = core._reset_some(core.key, np.int32(3), core.state, obs, done)
    steps = np.asarray(state.steps)
    assert steps.tolist() == [3, 3, 0, 3]
    np.testing.assert_array_equal(np.asarray(new_obs)[[0, 1, 3]], np.asarray(obs)[[0, 1, 3]])
    np.testing.assert_array_equal(
        np.asarray(state.market.cash)[[0, 1, 3]], before.market.cash[[0, 1, 3]]
    )


def test_vector_envs_predictor_hook() -> None:
    """information='predictor' in make_vec/make_sb3_vec: batched, validated, applied."""
    calls = []
    table = np.tile([0.5, 0.3, 0.2, 0.55, 0.45], (3, 2, 1)).astype(np.float32)
    table[1, :, :3] = [0.2, 0.3, 0.5]

    def predictor(observations: np.ndarray) -> np.ndarray:
        calls.append(observations.shape)
        return table

    vec = envs.make_vec(3, n_matches=2, information="predictor", predictor=predictor)
    names = vec.observation_names
    obs, _ = vec.reset(seed=0)
    np.testing.assert_allclose(
        obs[:, names.index("m0_model_probability_home")],
        obs[:, names.index("m0_market_probability_home")],
    )
    obs, *_ = vec.step(np.zeros((3, 10), np.float32))
    assert calls == [(3, vec.single_observation_space.shape[0])]
    np.testing.assert_allclose(obs[:, names.index("m1_model_probability_away")], [0.2, 0.5, 0.2])
    sb3 = envs.make_sb3_vec(3, n_matches=2, information="predictor", predictor=predictor)
    sb3.reset()
    obs, *_ = sb3.step(np.zeros((3, 10), np.float32))
    np.testing.assert_allclose(obs[:, names.index("m0_model_probability_draw")], 0.3)
    with pytest.raises(ValueError, match="needs predictor"):
        envs.make_vec(2, information="predictor")
    with pytest.raises(ValueError, match="only used with information='predictor'"):
        envs.make_vec(2, information="oracle_noise", predictor=predictor)
    bad = envs.make_vec(3, n_matches=2, information="predictor", predictor=lambda o: table[:2])
    bad.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected shape \(3, 2, 5\)"):
        bad.step(np.zeros((3, 10), np.float32))
    wrong = table.copy()
    wrong[2, 1, 3] = 0.9
    bad = envs.make_vec(3, n_matches=2, information="predictor", predictor=lambda o: wrong)
    bad.reset(seed=0)
    with pytest.raises(ValueError, match="over/under probabilities of match 1 of environment 2"):
        bad.step(np.zeros((3, 10), np.float32))

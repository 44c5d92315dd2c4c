"""Environments: API checkers, invariants under fuzzing, determinism, bad input."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import VecCheckNan

import envs
from envs import functional
from market_sim.regimes import REGIME_NAMES


@pytest.fixture(scope="module")
def env() -> envs.FootballMarketEnv:
    return gym.make("tetra/FootballMarket-v0", regime="calm", league="E0").unwrapped


def test_gymnasium_and_sb3_checkers_pass(env) -> None:
    check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)
    assert len(env.observation_names) == env.observation_space.shape[0]
    assert "m0_cas_home" in env.observation_names and "kappa" in env.observation_names


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


def _run_episode(key: jax.Array, params: functional.EnvParams, kind: str):
    """Run one episode with random / extreme / boundary actions; collect invariants."""

    def body(carry, step_key):
        state, done_before = carry
        k_action, k_step = jax.random.split(step_key)
        size = params.market.n_matches * 5
        uniform = jax.random.uniform(k_action, (size,), minval=-1.0, maxval=1.0)
        action = {
            "random": uniform,
            "extreme": jnp.sign(uniform) * 1e9,
            "boundary": jnp.where(uniform > 0, 1.0, -1.0),
        }[kind]
        obs, new_state, reward, done, info = functional.step(k_step, state, action, params)
        market = new_state.market
        bankroll = market.cash + market.our_stakes.sum()
        checks = {
            "obs_finite": jnp.all(jnp.isfinite(obs)),
            "reward_finite": jnp.isfinite(reward),
            "cash": market.cash,
            "fills_over_depth": jnp.max(info["executed_stakes"] - state.market.depth),
            "over_per_bet": jnp.max(
                market.our_stakes - params.per_bet_cap * jnp.maximum(bankroll, 0.0) * 1.0001
            ),
            "exposure_fraction": market.our_stakes.sum() / jnp.maximum(bankroll, 1e-6),
        }
        state_out = jax.tree.map(lambda a, b: jnp.where(done_before, a, b), state, new_state)
        return (state_out, done_before | done), checks

    _, state = functional.reset(key, params)
    steps = params.market.pre_match_ticks + 113
    _, checks = jax.lax.scan(body, (state, jnp.bool_(False)), jax.random.split(key, steps))
    return checks


@pytest.mark.slow
@pytest.mark.parametrize("regime", REGIME_NAMES)
def test_invariants_under_fuzzing(regime: str) -> None:
    """Random, extreme (±1e9) and boundary actions: no NaN, cash ≥ 0, caps and depth hold.

    Per regime: 3 kinds × 96 episodes × ~119 steps ≈ 34,000 steps; 8 regimes ≈ 270,000.
    """
    params = envs.make_params(regime=regime)
    run = jax.jit(jax.vmap(_run_episode, in_axes=(0, None, None)), static_argnums=2)
    for kind in ("random", "extreme", "boundary"):
        checks = jax.tree.map(
            np.asarray, run(jax.random.split(jax.random.PRNGKey(3), 96), params, kind)
        )
        assert checks["obs_finite"].all(), (regime, kind)
        assert checks["reward_finite"].all(), (regime, kind)
        assert checks["cash"].min() >= 0.0, (regime, kind)
        assert checks["fills_over_depth"].max() <= 1e-3, (regime, kind)
        assert checks["over_per_bet"].max() <= 1e-3, (regime, kind)
        assert checks["exposure_fraction"].max() <= params.hard_cap_base + 1e-4, (regime, kind)


def test_same_seed_same_episode(env) -> None:
    def roll(seed: int):
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        trace = [obs]
        for _ in range(20):
            obs, reward, *_, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
            trace.append(np.append(obs, [reward, info["equity"]]))
        return trace

    first, second, other = roll(5), roll(5), roll(6)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])


def test_bad_actions_are_rejected(env) -> None:
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, np.float32)
    action[7] = np.nan
    with pytest.raises(ValueError, match="index 7"):
        env.step(action)
    with pytest.raises(ValueError, match=r"expected shape \(50,\), got \(49,\)"):
        env.step(np.zeros(49))


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown regime 'stormy'.*calm"):
        envs.make_params(regime="stormy")
    with pytest.raises(ValueError, match="unknown league 'XX'"):
        envs.make_params(league="XX")
    with pytest.raises(ValueError, match="unknown environment options"):
        envs.make_params(regim="calm")
    with pytest.raises(ValueError, match="per_bet_cap"):
        envs.make_params(per_bet_cap=2.0)


def test_info_exposes_oracle_under_documented_key(env) -> None:
    env.reset(seed=0)
    *_, info = env.step(np.zeros(env.action_space.shape))
    assert set(envs.PRIVILEGED_INFO_KEYS) <= set(info)
    probability = info["oracle_true_probability"]
    np.testing.assert_allclose(probability[:, :3].sum(-1), 1.0, atol=1e-3)


def test_season_mode_carries_bankroll() -> None:
    params = envs.make_params(season_mode=True, season_rounds=2, n_matches=3)
    obs, state = functional.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(functional.step)
    rounds = set()
    for i in range(2 * (params.market.pre_match_ticks + 113)):
        obs, state, reward, done, info = step(
            jax.random.PRNGKey(i), state, jnp.full((15,), 0.5), params
        )
        rounds.add(int(info["round_index"]))
        if bool(done):
            break
    assert rounds == {0, 1}
    assert bool(done)

"""Environments: API checkers, invariants under fuzzing, determinism, bad input."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs import functional
from market_sim.bookmaker import SELECTION_NAMES
from market_sim.regimes import REGIME_NAMES


@pytest.fixture(scope="module")
def env() -> envs.FootballMarketEnv:
    return gym.make("tetra/FootballMarket-v0", regime="calm", league="E0").unwrapped


def test_gymnasium_and_sb3_checkers_pass(env) -> None:
    check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)
    assert len(env.observation_names) == env.observation_space.shape[0]
    assert "m0_cas_home" in env.observation_names and "kappa" in env.observation_names


def _run_episode(key: jax.Array, params: functional.EnvParams, kind: jax.Array):
    """One episode with random (kind 0), extreme ±1e9 (1) or boundary ±1 (2) actions."""

    def body(carry, step_key):
        state, done_before = carry
        k_action, k_step = jax.random.split(step_key)
        size = params.market.n_matches * 5
        uniform = jax.random.uniform(k_action, (size,), minval=-1.0, maxval=1.0)
        action = jnp.select(
            [kind == 0, kind == 1], [uniform, jnp.sign(uniform) * 1e9], jnp.sign(uniform)
        )
        obs, new_state, reward, done, info = functional.step(k_step, state, action, params)
        # Caps hold when a bet is placed, against the bankroll at that moment (an older
        # bet may exceed today's cap after the bankroll shrank; that is not a new bet).
        before = state.market
        bankroll = before.cash + before.our_stakes.sum()
        placed = info["executed_stakes"] > 0
        after_fill = before.our_stakes + info["executed_stakes"]
        checks = {
            "obs_finite": jnp.all(jnp.isfinite(obs)),
            "reward_finite": jnp.isfinite(reward),
            "cash": new_state.market.cash,
            "fills_over_depth": jnp.max(info["executed_stakes"] - before.depth),
            "over_per_bet": jnp.max(
                jnp.where(placed, after_fill - params.per_bet_cap * bankroll * 1.0001, 0.0)
            ),
            "exposure_fraction": jnp.where(
                placed.any(), after_fill.sum() / jnp.maximum(bankroll, 1e-6), 0.0
            ),
            "stepped": ~done_before,
        }
        state_out = jax.tree.map(lambda a, b: jnp.where(done_before, a, b), state, new_state)
        return (state_out, done_before | done), checks

    _, state = functional.reset(key, params)
    steps = params.market.pre_match_ticks + 113
    _, checks = jax.lax.scan(body, (state, jnp.bool_(False)), jax.random.split(key, steps))
    return checks


@pytest.mark.slow
def test_invariants_under_fuzzing() -> None:
    """Random, extreme (±1e9) and boundary actions in every regime, > 100,000 steps.

    No NaN in observations or rewards, cash never negative, no fill above depth, no new
    bet beyond its per-selection cap or the Hard-Cap. Regimes with the same parameter
    layout run in one vmapped call: [regimes] × [3 kinds] × [episodes].
    """
    groups: dict[str, list[str]] = {}
    for regime in REGIME_NAMES:
        groups.setdefault(str(jax.tree.structure(envs.make_params(regime=regime))), []).append(
            regime
        )
    episodes = 42
    kinds = jnp.arange(3)
    total_steps = 0
    for names in groups.values():
        stacked = jax.tree.map(
            lambda *leaves: jnp.stack(leaves), *[envs.make_params(regime=n) for n in names]
        )
        over_episodes = jax.vmap(_run_episode, in_axes=(0, None, None))
        over_kinds = jax.vmap(over_episodes, in_axes=(None, None, 0))
        over_regimes = jax.jit(jax.vmap(over_kinds, in_axes=(None, 0, None)))
        keys = jax.random.split(jax.random.PRNGKey(3), episodes)
        checks = jax.tree.map(np.asarray, over_regimes(keys, stacked, kinds))
        cap = float(envs.make_params().hard_cap_base)
        for index, name in enumerate(names):
            row = {key: value[index] for key, value in checks.items()}
            assert row["obs_finite"].all(), name
            assert row["reward_finite"].all(), name
            assert row["cash"].min() >= 0.0, name
            assert row["fills_over_depth"].max() <= 1e-3, name
            assert row["over_per_bet"].max() <= 1e-3, name
            assert row["exposure_fraction"].max() <= cap + 1e-4, name
            total_steps += int(row["stepped"].sum())
    assert total_steps >= 100_000


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
    with pytest.raises(ValueError, match=r"unknown regime 'stormy'.*calm"):
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


def test_shaping_is_potential_based() -> None:
    """With γ = 1 the shaping terms telescope: the episode's return is unchanged."""
    returns = {}
    for weight in (0.0, 1.0):
        params = envs.make_params(n_matches=3, shaping_weight=weight, shaping_discount=1.0)
        _, state = functional.reset(jax.random.PRNGKey(0), params)
        step = jax.jit(functional.step)
        total, shaped_any = 0.0, False
        for i in range(params.market.pre_match_ticks + 113):
            action = jnp.where(jnp.arange(15) % 4 == 0, 0.8, -1.0)
            _, new_state, reward, done, _ = step(jax.random.PRNGKey(i), state, action, params)
            shaped_any |= bool(new_state.potential != 0.0)
            state = new_state
            total += float(reward)
            if bool(done):
                break
        returns[weight] = (total, shaped_any)
    assert returns[1.0][1], "the potential never moved: the test would prove nothing"
    assert returns[1.0][0] == pytest.approx(returns[0.0][0], abs=1e-4)


def test_predictor_hook_replaces_the_oracle_information() -> None:
    """information='predictor': the model columns are the predictor's, checked at the door."""
    calls = []

    def predictor(observation: np.ndarray) -> np.ndarray:
        calls.append(observation)
        probabilities = np.tile([0.5, 0.3, 0.2, 0.55, 0.45], (3, 1))
        return probabilities

    env = envs.FootballMarketEnv(predictor=predictor, information="predictor", n_matches=3)
    obs, _ = env.reset(seed=0)
    names = env.observation_names
    market = obs[names.index("m0_market_probability_home")]
    assert obs[names.index("m0_model_probability_home")] == pytest.approx(market)
    obs, *_ = env.step(np.zeros(15))
    assert len(calls) == 1
    assert obs[names.index("m1_model_probability_draw")] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="needs predictor"):
        envs.FootballMarketEnv(information="predictor")
    bad = envs.FootballMarketEnv(
        predictor=lambda o: np.full((3, 5), 0.5), information="predictor", n_matches=3
    )
    bad.reset(seed=0)
    with pytest.raises(ValueError, match=r"1X2 probabilities of match 0 sum to 1\.5"):
        bad.step(np.zeros(15))


def _random_blocks(rng: np.random.Generator, cases: int, matches: int) -> np.ndarray:
    """Symmetric [cases, M, 5, 5] blocks with unit diagonal and entries in [-1, 1]."""
    raw = rng.uniform(-1.0, 1.0, (cases, matches, 5, 5))
    blocks = (raw + np.swapaxes(raw, -1, -2)) / 2.0
    blocks[..., range(5), range(5)] = 1.0
    return blocks.astype(np.float32)


def _block_diagonal(blocks: jax.Array) -> jax.Array:
    matches = blocks.shape[0]
    full = jnp.eye(matches)[:, None, :, None] * blocks[:, :, None, :]
    return full.reshape(matches * 5, matches * 5)


@pytest.mark.parametrize("threshold", [0.3, 0.0, -0.2])
def test_block_risk_matches_dense_portfolio(threshold: float) -> None:
    """N_eff, average correlation, clusters and the projection on the per-match blocks
    equal market_sim.portfolio's dense functions on the full correlation."""
    from market_sim import portfolio

    rng = np.random.default_rng(7)
    cases, matches = 48, 4
    outcome = rng.dirichlet([2.0, 2.0, 2.0], (cases, matches))
    over = rng.uniform(0.2, 0.8, (cases, matches, 1))
    probability = jnp.asarray(np.concatenate([outcome, over, 1 - over], -1), jnp.float32)
    # The environment's blocks, then arbitrary ones (positive links inside a match).
    blocks = jnp.concatenate(
        [
            jax.vmap(functional.correlation_blocks)(probability),
            jnp.asarray(_random_blocks(rng, cases, matches)),
        ]
    )
    total = 2 * cases
    open_bet = rng.uniform(size=(total, matches, 5)) < 0.5
    weights = jnp.asarray(rng.uniform(0.0, 60.0, (total, matches, 5)) * open_bet, jnp.float32)
    weights = weights.at[0].set(0.0).at[1].set(0.0).at[1, 0, 0].set(5.0)  # empty, one bet
    per_bet = jnp.asarray(rng.uniform(0.0, 0.05, (total, matches, 5)), jnp.float32)
    depth = jnp.asarray(rng.uniform(0.0, 80.0, (total, matches, 5)), jnp.float32)
    hard_cap = jnp.asarray(rng.uniform(0.05, 0.4, total), jnp.float32)

    def both(blocks, weights, per_bet, depth, hard_cap):
        dense = _block_diagonal(blocks)
        flat = weights.reshape(-1)
        labels_dense = portfolio.correlation_clusters(dense, threshold)
        labels, same = functional.block_clusters(blocks, threshold)
        project = functional.block_project_stakes(
            weights, 1000.0, per_bet, hard_cap, same, depth, threshold < 0.0
        )
        reference = portfolio.project_stakes(
            flat, 1000.0, per_bet.reshape(-1), hard_cap, labels_dense, depth.reshape(-1)
        )
        return {
            "n_eff": (
                functional.block_effective_bets(weights, blocks),
                portfolio.effective_bets(flat, dense),
            ),
            "avg_corr": (
                functional.block_average_correlation(blocks, weights),
                portfolio.average_correlation(dense, flat),
            ),
            "labels": (labels, labels_dense),
            "stakes": (project.reshape(-1), reference),
        }

    out = jax.jit(jax.vmap(both))(blocks, weights, per_bet, depth, hard_cap)
    np.testing.assert_allclose(*out["n_eff"], rtol=1e-5)
    np.testing.assert_allclose(*out["avg_corr"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(*out["labels"])
    np.testing.assert_allclose(*out["stakes"], rtol=1e-5, atol=1e-4)  # currency of 1000
    if threshold >= 0.0:
        # All singletons (the environment's case: no positive correlation in a match).
        singles = jax.vmap(
            lambda w, p, d, h: functional.block_project_stakes(w, 1000.0, p, h, None, d)
        )(weights[:cases], per_bet[:cases], depth[:cases], hard_cap[:cases])
        np.testing.assert_allclose(singles.reshape(cases, -1), out["stakes"][1][:cases], atol=1e-4)
    # The dense correlation of the environment is the blocks on the diagonal.
    np.testing.assert_array_equal(
        functional.selection_correlation(probability[0]), _block_diagonal(blocks[0])
    )


def test_market_gamma_matches_market_sensitivity() -> None:
    """The gather-free γ equals signals.market_sensitivity on the time-ordered windows."""
    import dataclasses

    from market_sim import signals
    from market_sim.signals import RingBuffer

    params = envs.make_params(n_matches=3)
    _, state = functional.reset(jax.random.PRNGKey(0), params)
    window = state.market.our_flow_window.values.shape[-1]
    rng = np.random.default_rng(2)
    for count in (0, 1, 4, 5, window - 1, window, window, window):
        position = count % window if count < window else int(rng.integers(0, window))

        def ring(count=count, position=position) -> RingBuffer:
            return RingBuffer(
                values=jnp.asarray(rng.normal(size=(3, window)), jnp.float32),
                count=jnp.int32(count),
                position=jnp.int32(position),
            )

        market = dataclasses.replace(state.market, our_flow_window=ring(), move_window=ring())
        reference = signals.market_sensitivity(
            functional.per_match_windows(market.our_flow_window),
            functional.per_match_windows(market.move_window),
        )
        np.testing.assert_allclose(functional.market_gamma(market), reference, atol=1e-6)


def test_target_actions_hold_the_exposure() -> None:
    """action_mode='target': repeating an action keeps the open exposure at its target;
    the default adds a new stake every tick until the cap."""
    exposure = {}
    for mode in ("target", "increment"):
        params = envs.make_params(n_matches=2, action_mode=mode)
        obs, state = functional.reset(jax.random.PRNGKey(3), params)
        action = jnp.full(10, -1.0).at[0].set(0.4)  # 0.4 × per_bet_cap on the home win
        step = jax.jit(functional.step)
        for t in range(4):
            obs, state, _, _, _ = step(jax.random.PRNGKey(t), state, action, params)
        bankroll = state.market.cash + state.market.our_stakes.sum()
        exposure[mode] = float(state.market.our_stakes[0, 0] / bankroll)
    assert exposure["target"] == pytest.approx(0.4 * 0.05, rel=0.02)
    assert exposure["increment"] == pytest.approx(0.05, rel=0.02)  # 4 × 0.02, capped
    with pytest.raises(ValueError, match=r"unknown action_mode 'all_in'"):
        envs.make_params(action_mode="all_in")


def test_market_noise_information_has_no_oracle() -> None:
    """information='market_noise' with zero noise: the model is the market's own price."""
    params = envs.make_params(n_matches=2, information="market_noise", model_noise=0.0)
    obs, state = functional.reset(jax.random.PRNGKey(0), params)
    obs, state, _, _, _ = functional.step(jax.random.PRNGKey(1), state, -jnp.ones(10), params)
    np.testing.assert_allclose(state.model_probability, state.market.implied, atol=1e-5)
    assert not np.allclose(state.model_probability, state.market.true_probability, atol=1e-3)


def test_match_pnl_sums_to_the_change_of_equity() -> None:
    params = envs.make_params(n_matches=3, regime="biased_crowd")
    obs, state = functional.reset(jax.random.PRNGKey(2), params)
    step = jax.jit(functional.step)
    equity = float(state.equity)
    for t in range(119):
        action = jax.random.uniform(jax.random.PRNGKey(100 + t), (15,), minval=-1.0, maxval=1.0)
        obs, state, _, done, info = step(jax.random.PRNGKey(t), state, action, params)
        assert float(info["match_pnl"].sum()) == pytest.approx(
            float(info["equity"]) - equity, abs=1e-2
        )
        equity = float(info["equity"])
        if bool(done):
            break
    assert bool(done) and float(state.market.our_stakes.sum()) == 0.0


def test_expected_return_column_is_model_times_odds_minus_one() -> None:
    params = envs.make_params(n_matches=3)
    obs, state = functional.reset(jax.random.PRNGKey(7), params)
    names = functional.observation_names(params)
    columns = [names.index(f"m{m}_expected_return_{s}") for m in range(3) for s in SELECTION_NAMES]
    expected = np.asarray(state.model_probability * state.market.odds - 1.0).reshape(-1)
    np.testing.assert_allclose(np.asarray(obs)[columns], np.clip(expected, -1.0, 10.0), rtol=1e-5)
    assert np.all(np.asarray(obs)[columns] >= -1.0)

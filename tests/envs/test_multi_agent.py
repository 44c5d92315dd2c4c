"""FootballMarketParallelEnv: PettingZoo API and seed tests, per-agent accounting."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from envs import FootballMarketParallelEnv


@pytest.fixture(scope="module")
def env() -> FootballMarketParallelEnv:
    return FootballMarketParallelEnv(n_matches=3)


def test_parallel_api(env: FootballMarketParallelEnv) -> None:
    parallel_api_test(env, num_cycles=20)


def test_parallel_seed() -> None:
    parallel_seed_test(lambda: FootballMarketParallelEnv(n_matches=3), num_cycles=5)


def test_episode_accounting_and_gamma(env: FootballMarketParallelEnv) -> None:
    obs, _ = env.reset(seed=3)
    assert env.agents == ["ours", "sharp", "square"]
    assert all(o.shape == env.observation_space("ours").shape for o in obs.values())
    bankroll = float(env.params.market.bankroll)
    steps = 0
    while env.agents:
        actions = {a: env.action_space(a).sample() for a in env.agents}
        actions["square"] = np.ones_like(actions["square"])  # always bets the max
        obs, rewards, terms, truncs, infos = env.step(actions)
        steps += 1
        for info in infos.values():
            assert info["cash"] >= -1e-3
            assert np.all(info["executed_stakes"] <= info["projected_stakes"] + 1e-3)
            assert np.isfinite(info["gamma"])
    assert steps > 90
    # Each agent's equity is its own: starting bankroll × exp(Σ rewards) (float32 sums).
    finals = {a: float(infos[a]["equity"]) for a in infos}
    assert len(set(round(v, 3) for v in finals.values())) == 3
    assert all(v >= 0 for v in finals.values()) and bankroll > 0


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="model_noise"):
        FootballMarketParallelEnv(agents=["a", "b"], model_noise=[0.1], n_matches=3)
    with pytest.raises(NotImplementedError, match="bookmaker"):
        FootballMarketParallelEnv(bookmaker_agent=True, n_matches=3)
    env = FootballMarketParallelEnv(n_matches=3)
    env.reset(seed=0)
    action = np.zeros(15, np.float32)
    action[4] = np.inf
    with pytest.raises(ValueError, match="index 4"):
        env.step({"ours": action})

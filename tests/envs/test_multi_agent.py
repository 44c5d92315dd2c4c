"""FootballMarketParallelEnv: PettingZoo API and seed tests, per-agent accounting, and
the adaptive bookmaker agent (pricing actions, zero-sum accounting, input checks)."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from envs import FootballMarketParallelEnv
from envs.multi_agent import BOOKMAKER, BOOKMAKER_MATCH_COLUMNS
from market_sim import market as market_lib
from market_sim.bookmaker import (
    MIN_ODDS,
    BookmakerProfile,
    QuoteAdjustment,
    adjusted_quote,
    floor_probabilities,
    margin_parameters,
    quote,
)


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
    env = FootballMarketParallelEnv(n_matches=3)
    env.reset(seed=0)
    action = np.zeros(15, np.float32)
    action[4] = np.inf
    with pytest.raises(ValueError, match="index 4"):
        env.step({"ours": action})


# ------------------------------------------------------------- adaptive bookmaker


@pytest.fixture(scope="module")
def book_env() -> FootballMarketParallelEnv:
    return FootballMarketParallelEnv(n_matches=3, bookmaker_agent=True)


def test_bookmaker_parallel_api(book_env: FootballMarketParallelEnv) -> None:
    parallel_api_test(book_env, num_cycles=20)
    assert book_env.possible_agents[-1] == BOOKMAKER
    assert book_env.action_space(BOOKMAKER).shape == (6,)
    names = book_env.bookmaker_observation_names
    assert book_env.observation_space(BOOKMAKER).shape == (len(names),)
    assert len(names) == 3 * len(BOOKMAKER_MATCH_COLUMNS) + 2


def test_bookmaker_parallel_seed() -> None:
    parallel_seed_test(
        lambda: FootballMarketParallelEnv(n_matches=3, bookmaker_agent=True), num_cycles=5
    )


def _quiet_run(
    env: FootballMarketParallelEnv, book_action: np.ndarray, steps: int, seed: int = 5
) -> list[dict]:
    """Bettors idle (the crowd trades), the bookmaker plays ``book_action`` every step."""
    env.reset(seed=seed)
    infos = []
    for _ in range(steps):
        _, _, _, _, info = env.step({BOOKMAKER: book_action})
        infos.append(info[BOOKMAKER])
    return infos


def test_bookmaker_margin_raises_overround_and_take(book_env: FootballMarketParallelEnv) -> None:
    steps = 12  # pre-match and early in-play: no market decided yet
    low = _quiet_run(book_env, np.tile([-1.0, 0.0], 3).astype(np.float32), steps)
    neutral = _quiet_run(book_env, np.zeros(6, np.float32), steps)
    high = _quiet_run(book_env, np.tile([1.0, 0.0], 3).astype(np.float32), steps)
    for a, b, c in zip(low, neutral, high, strict=True):
        np.testing.assert_allclose(a["margin_multiplier"], 0.5, rtol=1e-5)
        np.testing.assert_allclose(c["margin_multiplier"], 2.0, rtol=1e-5)
        # The quote after each step: the overround scales with the multiplier.
        assert (a["overround"] >= 0).all() and (c["overround"] > 0).all()
        np.testing.assert_allclose(a["overround"], 0.5 * b["overround"], rtol=0.05)
        np.testing.assert_allclose(c["overround"], 2.0 * b["overround"], rtol=0.05)
        for info in (a, b, c):
            odds = info["executed_odds"]
            assert np.isfinite(odds).all() and (odds > 1.0).all()
    # From the second step on, money is taken at those prices: the expected take grows.
    take = [sum(float(i["take"]) for i in run[1:]) for run in (low, neutral, high)]
    flow = [sum(float(i["flow"].sum()) for i in run[1:]) for run in (low, neutral, high)]
    assert 0 < take[0] < take[1] < take[2]
    assert take[0] / flow[0] < take[1] / flow[1] < take[2] / flow[2]


def test_bookmaker_skew_moves_home_price(book_env: FootballMarketParallelEnv) -> None:
    names = book_env.bookmaker_observation_names
    home = [names.index(f"m{i}_market_probability_home") for i in range(3)]
    away = [names.index(f"m{i}_market_probability_away") for i in range(3)]
    probabilities = []
    for skew in (-1.0, 0.0, 1.0):
        book_env.reset(seed=2)
        action = np.tile([0.0, skew], 3).astype(np.float32)
        obs, *_ = book_env.step({BOOKMAKER: action})
        probabilities.append((obs[BOOKMAKER][home], obs[BOOKMAKER][away]))
    (home_down, away_up), (home_0, away_0), (home_up, away_down) = probabilities
    assert (home_down < home_0).all() and (home_0 < home_up).all()
    assert (away_down < away_0).all() and (away_0 < away_up).all()


def test_neutral_bookmaker_reproduces_the_scripted_market(
    env: FootballMarketParallelEnv, book_env: FootballMarketParallelEnv
) -> None:
    env.reset(seed=9)
    book_env.reset(seed=9)
    rng = np.random.default_rng(0)
    for _ in range(10):
        actions = {a: rng.uniform(-1, 1, 15).astype(np.float32) for a in env.agents}
        obs_a, rew_a, *_ = env.step(actions)
        obs_b, rew_b, *_ = book_env.step(actions)  # the bookmaker sends nothing: neutral
        for agent in env.possible_agents:
            np.testing.assert_allclose(obs_a[agent], obs_b[agent], rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(rew_a[agent], rew_b[agent], rtol=1e-3, atol=1e-6)


def test_bookmaker_zero_sum_and_bankrolls(book_env: FootballMarketParallelEnv) -> None:
    book_env.reset(seed=11)
    bankroll = float(book_env.params.market.bankroll)
    book_bankroll = float(book_env.bookmaker.bankroll)
    rewards, crowd_money, crowd_payout = 0.0, 0.0, np.zeros((3, 5))
    settled = 0.0
    while book_env.agents:
        actions = {a: book_env.action_space(a).sample() for a in book_env.agents}
        _, rew, _, _, infos = book_env.step(actions)
        book = infos[BOOKMAKER]
        bettors = sum(infos[a]["executed_stakes"] for a in book_env.bettors)
        crowd = book["flow"] - bettors
        assert (crowd >= -1e-2).all()
        crowd_money += float(crowd.sum())
        crowd_payout += crowd * book["executed_odds"]
        rewards += rew[BOOKMAKER]
        settled += float(book["settled_pnl"])
        assert np.isfinite(book["executed_odds"]).all() and (book["executed_odds"] > 1).all()
        for agent in book_env.bettors:
            assert infos[agent]["cash"] >= -1e-3
            assert np.all(
                infos[agent]["executed_stakes"] <= infos[agent]["projected_stakes"] + 1e-3
            )
    won = np.asarray(market_lib.outcome_indicators(book_env._states[0].market.match.score))
    book_pnl = float(book["equity"]) - book_bankroll
    bettors_pnl = sum(float(infos[a]["equity"]) - bankroll for a in book_env.bettors)
    crowd_pnl = float((crowd_payout * won).sum()) - crowd_money
    scale = crowd_money * 1e-4 + 1.0  # float32 sums over ~10^6 currency units
    assert abs(book_pnl + bettors_pnl + crowd_pnl) < scale
    assert abs(book_pnl - settled) < scale
    assert abs(rewards * book_bankroll - book_pnl) < scale


def test_bookmaker_bad_input(book_env: FootballMarketParallelEnv) -> None:
    book_env.reset(seed=0)
    action = np.zeros(6, np.float32)
    action[3] = np.nan
    with pytest.raises(ValueError, match=r"bookmaker.*index 3"):
        book_env.step({BOOKMAKER: action})
    with pytest.raises(ValueError, match=r"bookmaker.*expected shape \(6,\), got \(15,\)"):
        book_env.step({BOOKMAKER: np.zeros(15, np.float32)})
    with pytest.raises(ValueError, match="rename"):
        FootballMarketParallelEnv(agents=["a", BOOKMAKER], bookmaker_agent=True, n_matches=3)
    with pytest.raises(ValueError, match="bookmaker_agent=True"):
        FootballMarketParallelEnv(bookmaker_bankroll=1e6, n_matches=3)
    with pytest.raises(ValueError, match="bookmaker_margin_range"):
        FootballMarketParallelEnv(bookmaker_agent=True, bookmaker_margin_range=0.5, n_matches=3)


@pytest.mark.parametrize("method", ["shin", "multiplicative"])
def test_adjusted_quote_keeps_prices_valid(method: str) -> None:
    rng = np.random.default_rng(0)
    raw = rng.dirichlet([0.3, 0.3, 0.3], 64), rng.dirichlet([0.5, 0.5], 64)
    probabilities = np.asarray(floor_probabilities(np.concatenate(raw, axis=1)))
    profile = BookmakerProfile(margin_method=method)
    z = margin_parameters(probabilities, profile)
    base = np.asarray(quote(probabilities, profile, z))
    neutral, implied = adjusted_quote(probabilities, profile, z, QuoteAdjustment(1.0, 0.0))
    np.testing.assert_allclose(neutral, base, rtol=1e-5)
    np.testing.assert_allclose(implied, probabilities, atol=1e-6)
    for multiplier in (0.5, 2.0):
        for skew in (-0.25, 0.25):
            adjustment = QuoteAdjustment(np.full(64, multiplier), np.full(64, skew))
            odds, implied = (
                np.asarray(a) for a in adjusted_quote(probabilities, profile, z, adjustment)
            )
            assert np.isfinite(odds).all() and (odds >= MIN_ODDS - 1e-6).all()
            np.testing.assert_allclose(implied[:, :3].sum(1), 1.0, atol=1e-5)
            np.testing.assert_allclose(implied[:, 3:], probabilities[:, 3:], atol=1e-6)
            # Where no price sits at the cap, the overround is multiplier × the quote's.
            free = (odds > MIN_ODDS + 1e-4).all(1) & (base > MIN_ODDS + 1e-4).all(1)
            for market in (slice(0, 3), slice(3, 5)):
                margin = (1.0 / odds[:, market]).sum(1) - 1.0
                target = multiplier * ((1.0 / quote(implied, profile, z))[:, market].sum(1) - 1.0)
                np.testing.assert_allclose(margin[free], target[free], rtol=1e-3, atol=1e-6)
                assert (margin[free] >= 0).all()
            moved = np.sign(implied[:, 0] - probabilities[:, 0])
            inside = (probabilities[:, 0] > 0.01) & (probabilities[:, 0] < 0.99)  # off the floor
            assert (moved[inside] == np.sign(skew)).all()

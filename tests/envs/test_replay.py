"""ReplayEnv: API checkers, the look-ahead firewall, caps/padding, errors."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs import functional
from envs.replay import PRE_MATCH_FEATURE_NAMES, ReplayEnv, snapshot_day
from market_sim.data import ODDS_COLUMNS, DataError

SEASON = "2324"
CLOSING_HEADERS = {h for name, hs in ODDS_COLUMNS.items() if "_close_" in name for h in hs}


@pytest.fixture(scope="module")
def replay(shared_data: Path) -> ReplayEnv:
    return gym.make(
        "tetra/FootballReplay-v0",
        league="E0",
        seasons=[SEASON],
        data_dir=shared_data / "football-data",
        price="pinnacle",
    ).unwrapped


def test_checkers_and_layout(replay: ReplayEnv) -> None:
    check_env(replay, skip_render_check=True)
    sb3_check_env(replay, warn=True)
    params = envs.make_params(n_matches=replay.n_matches)
    assert replay.observation_names == functional.observation_names(params)
    assert replay.observation_space.shape == (functional.observation_size(params),)
    obs, info = replay.reset()
    names = replay.observation_names
    assert obs[names.index("m0_pre_match")] == 1.0
    assert obs[names.index("bankroll_fraction")] == 1.0
    assert info["pre_match_features"].shape == (replay.n_matches, len(PRE_MATCH_FEATURE_NAMES))
    # expected_return = p_model × odds − 1, so Σ p_model / (1 + expected_return) over the
    # 1X2 selections is Σ 1 / odds = 1 + the overround.
    model = obs[[names.index(f"m0_model_probability_{s}") for s in ("home", "draw", "away")]]
    value = obs[[names.index(f"m0_expected_return_{s}") for s in ("home", "draw", "away")]]
    overround = obs[names.index("m0_overround_1x2")]
    assert np.sum(model / (1.0 + value)) == pytest.approx(1.0 + overround, rel=1e-4)


def _walk(env: ReplayEnv, seed: int = 0) -> tuple[list[np.ndarray], list[dict]]:
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    observations, infos = [obs], [info]
    done = False
    while not done:
        obs, _, done, _, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        observations.append(obs)
        infos.append(info)
    return observations, infos


def test_episode_caps_padding_and_determinism(replay: ReplayEnv) -> None:
    first, infos = _walk(replay)
    second, _ = _walk(replay)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert len(first) == replay.num_steps + 1
    cap = replay.config["per_bet_cap"]
    for obs, info in zip(first[:-1], infos[1:], strict=True):
        bankroll = obs[replay.observation_names.index("bankroll_fraction")] * replay.bankroll0
        stakes = info["stakes"]
        assert (stakes >= 0).all()
        assert (stakes <= cap * bankroll * (1 + 1e-4) + 1e-6).all()
        padded = info["results"][:, 0] < 0
        assert (stakes[padded] == 0).all()
        np.testing.assert_array_equal(
            info["clv_valid"], (stakes > 0) & (info["closing_odds"] > 1.0)
        )
    # Slates come in date order.
    dates = [info["date"] for info in infos[1:]]
    assert dates == sorted(dates)


def test_padded_slots_take_nothing(replay: ReplayEnv) -> None:
    replay.reset()
    # The first step with empty slots (a midweek slate of fewer than n_matches fixtures).
    first = next(i for i, (_, rows, _) in enumerate(replay.steps) if len(rows) < replay.n_matches)
    zeros = np.zeros(replay.action_space.shape, np.float32)
    for _ in range(first):
        replay.step(zeros)
    _, _, _, _, info = replay.step(np.ones(replay.action_space.shape, np.float32))
    padded = info["results"][:, 0] < 0
    assert padded.any()
    assert (info["stakes"][padded] == 0).all() and info["stakes"].sum() > 0


def test_snapshot_slates_follow_the_odds_collection(replay: ReplayEnv) -> None:
    """Default slates: Friday (Fri–Mon fixtures) or Tuesday (Tue–Thu) snapshot days, so
    no slate's model sees a result played on or after its matches' snapshot day."""
    assert replay.config["slate"] == "snapshot"
    dates = replay.frame["date"].to_numpy("datetime64[D]")
    starts = np.array(replay.slate_start, "datetime64[D]")
    weekday = (starts.astype(np.int64) + 3) % 7  # Monday = 0
    assert set(weekday.tolist()) <= {1, 4}
    decision = starts[replay.slate_of_row]
    assert (decision <= dates).all() and (dates - decision < np.timedelta64(4, "D")).all()
    np.testing.assert_array_equal(decision, [snapshot_day(d) for d in dates])
    assert np.all(np.diff(starts) > np.timedelta64(0, "D"))


@pytest.mark.parametrize("slate", ["date", "round"])
def test_other_slate_modes(shared_data: Path, slate: str) -> None:
    env = ReplayEnv(
        league="E0", seasons=[SEASON], data_dir=shared_data / "football-data", slate=slate
    )
    dates = env.frame["date"].to_numpy("datetime64[D]")
    decision = np.array(env.slate_start, "datetime64[D]")[env.slate_of_row]
    assert (decision <= dates).all()
    if slate == "date":
        np.testing.assert_array_equal(decision, dates)
    env.reset()
    _, _, _, _, info = env.step(np.ones(env.action_space.shape, np.float32))
    assert info["stakes"].sum() > 0


def test_nan_action_names_index(replay: ReplayEnv) -> None:
    replay.reset()
    action = np.zeros(replay.action_space.shape, np.float32)
    action[7] = np.nan
    with pytest.raises(ValueError, match="index 7"):
        replay.step(action)


def _rewrite(source: Path, target: Path, edit) -> None:
    """Copy a football-data CSV, applying ``edit(header, row)`` to every data row."""
    target.parent.mkdir(parents=True, exist_ok=True)
    text = source.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(text.splitlines()))
    header = rows[0]
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows[1:]:
            if row and any(row):
                writer.writerow(edit(header, list(row)))


def test_look_ahead_firewall(shared_data: Path, tmp_path: Path, replay: ReplayEnv) -> None:
    source = shared_data / "football-data" / SEASON / "E0.csv"
    original_dir, changed_dir = tmp_path / "original", tmp_path / "changed"
    shutil.copy(source, _mkdir(original_dir / SEASON) / "E0.csv")
    cutoff = replay.slate_start[len(replay.slate_start) // 2]
    cutoff_text = np.datetime_as_string(cutoff)

    def edit(header: list[str], row: list[str]) -> list[str]:
        day, month, year = row[header.index("Date")].split("/")
        date = f"{int(year) + (2000 if len(year) == 2 else 0):04d}-{month}-{day}"
        closing = [i for i, name in enumerate(header) if name in CLOSING_HEADERS]
        for i in closing:  # closing prices change everywhere
            if row[i]:
                row[i] = f"{float(row[i]) * 1.1 + 0.05:.2f}"
        if date > cutoff_text:  # results after day d change
            home, away = header.index("FTHG"), header.index("FTAG")
            row[home], row[away] = str(int(row[away]) + 2), row[home]
        return row

    _rewrite(source, changed_dir / SEASON / "E0.csv", edit)
    base = ReplayEnv(league="E0", seasons=[SEASON], data_dir=original_dir)
    moved = ReplayEnv(league="E0", seasons=[SEASON], data_dir=changed_dir)
    obs_a, infos_a = _walk(base)
    obs_b, infos_b = _walk(moved)
    checked = 0
    for step, info in enumerate(infos_a[1:]):
        if info["date"] > cutoff_text:
            break
        assert np.array_equal(obs_a[step], obs_b[step]), f"observation {step} leaked the future"
        np.testing.assert_array_equal(
            infos_a[step]["pre_match_features"], infos_b[step]["pre_match_features"]
        )
        checked += 1
    assert checked > 10
    # Model probabilities of matches up to day d: fitted on the past only.
    upto = base.frame["date"].to_numpy("datetime64[D]") <= cutoff
    np.testing.assert_array_equal(base.model[upto], moved.model[upto])
    assert not np.array_equal(base.model[~upto], moved.model[~upto])  # the edit did bite
    # Closing prices reach the CLV only.
    clv_a = np.concatenate([i["clv"].ravel() for i in infos_a[1:]])
    clv_b = np.concatenate([i["clv"].ravel() for i in infos_b[1:]])
    assert not np.allclose(clv_a, clv_b)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_errors_name_what_was_expected(shared_data: Path, tmp_path: Path) -> None:
    data_dir = shared_data / "football-data"
    with pytest.raises(ValueError, match="price: expected one of"):
        ReplayEnv(league="E0", seasons=[SEASON], data_dir=data_dir, price="betfair")
    with pytest.raises(ValueError, match="slate: expected one of"):
        ReplayEnv(league="E0", seasons=[SEASON], data_dir=data_dir, slate="week")
    with pytest.raises(DataError, match="N1"):
        ReplayEnv(league="N1", seasons=[SEASON], data_dir=data_dir)
    with pytest.raises(DataError, match="2526"):
        ReplayEnv(league="E0", seasons=["2526"], data_dir=data_dir)
    with pytest.raises(ValueError, match="unknown replay options"):
        ReplayEnv(league="E0", seasons=[SEASON], data_dir=data_dir, colour="red")

    def drop_pinnacle(header: list[str], row: list[str]) -> list[str]:
        for name in ("PSH", "PSD", "PSA"):
            row[header.index(name)] = ""
        return row

    _rewrite(data_dir / SEASON / "E0.csv", tmp_path / SEASON / "E0.csv", drop_pinnacle)
    with pytest.raises(DataError, match=r"season '2324'.*odds_pinnacle_home.*PSH"):
        ReplayEnv(league="E0", seasons=[SEASON], data_dir=tmp_path)

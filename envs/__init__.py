"""Gymnasium and PettingZoo environments over ``market_sim`` (registered on import).

- ``tetra/FootballMarket-v0`` (``FootballMarketEnv``): single agent, one slate or a season;
- ``envs.make_vec`` / ``envs.make_sb3_vec``: vectorised, one jitted vmapped step;
- ``envs.functional``: the pure-JAX API (``reset``/``step``) for JAX trainers;
- ``tetra/FootballReplay-v0`` (``ReplayEnv``): pre-match betting over real seasons;
- ``FootballMarketParallelEnv``: PettingZoo parallel env, several bettors in one market.
"""

from __future__ import annotations

import gymnasium as gym

from envs import functional
from envs.config import ENV_DEFAULTS, make_params
from envs.gym_env import PRIVILEGED_INFO_KEYS, FootballMarketEnv
from envs.multi_agent import FootballMarketParallelEnv
from envs.replay import ReplayEnv
from envs.vector import FootballMarketVecEnv, make_sb3_vec, make_vec

__all__ = [
    "ENV_DEFAULTS",
    "PRIVILEGED_INFO_KEYS",
    "FootballMarketEnv",
    "FootballMarketParallelEnv",
    "FootballMarketVecEnv",
    "ReplayEnv",
    "functional",
    "make_params",
    "make_sb3_vec",
    "make_vec",
]

if "tetra/FootballMarket-v0" not in gym.registry:
    gym.register(id="tetra/FootballMarket-v0", entry_point="envs.gym_env:FootballMarketEnv")
if "tetra/FootballReplay-v0" not in gym.registry:
    gym.register(id="tetra/FootballReplay-v0", entry_point="envs.replay:ReplayEnv")

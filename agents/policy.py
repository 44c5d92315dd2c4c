"""The policy interface shared by baselines, learned policies and the evaluator.

Two kinds, so that every policy meets the same evaluator (``agents.evaluation``):

- ``JaxPolicy``: a pure JAX function ``(key, observation, state, params) → action`` for one
  environment of ``envs.functional``; the evaluator vmaps and jits it. Learned JAX
  policies read only ``observation``; baselines may read the public quote in ``state``
  (``oracle_kelly`` alone reads the hidden oracle).
- ``HostPolicy``: a host function ``observations [N, obs] (numpy) → actions [N, A]`` for
  frameworks outside JAX (Stable-Baselines3 / torch, onnxruntime).

Actions are the environment's: [M·5] in [−1, 1], a > 0 asks for a × ``per_bet_cap`` of
the bankroll.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class JaxPolicy:
    """A policy as a pure JAX function of one environment (see the module docstring)."""

    name: str
    function: Callable[..., Any]
    baseline: bool = False


@dataclass(frozen=True)
class HostPolicy:
    """A policy evaluated on the host, batch of observations → batch of actions."""

    name: str
    function: Callable[[np.ndarray], np.ndarray]
    baseline: bool = False


Policy = JaxPolicy | HostPolicy

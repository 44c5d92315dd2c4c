"""Dynamic state of one match in the engine (an immutable pytree).

Counts are per side, shape ``[2]`` = (home, away), int32. The clock is
``period`` (0 pre-match, 1 first half, 2 second half), ``minute`` (regulation minute of
the last played tick, 0 before kick-off, 1..45 or 46..90) and ``added`` (stoppage minute
being played at the end of a half, 0 in regulation time). ``momentum`` is the latent
Ornstein–Uhlenbeck pressure per side (the live-flow signal of SPEC §2).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import struct


@struct.dataclass
class MatchState:
    """Everything that changes during a match; a batch of matches adds a leading axis."""

    period: Any
    minute: Any
    added: Any
    stoppage_first: Any
    stoppage_second: Any
    score: Any
    shots: Any
    shots_on_target: Any
    corners: Any
    fouls: Any
    yellow_cards: Any
    red_cards: Any
    momentum: Any
    openness: Any
    done: Any


@struct.dataclass
class MatchEvents:
    """What happened in one tick (counts per side ``[2]``) and the minute it was played."""

    played: Any
    period: Any
    minute: Any
    added: Any
    goals: Any
    shots: Any
    shots_on_target: Any
    corners: Any
    fouls: Any
    yellow_cards: Any
    red_cards: Any


def clock_minute(state: MatchState) -> Any:
    """Match minute t of SPEC §3: 0 pre-match, 1..90, 90 + k in second-half stoppage.

    First-half stoppage reads as 45 (the SPEC's clock has no room for 45+k).
    """
    second_half_added = jnp.where(state.period == 2, state.added, 0)
    return (state.minute + second_half_added).astype(jnp.float32)

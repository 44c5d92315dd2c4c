"""The betting crowd: three seeded groups whose money flows in proportion to liquidity.

All flows are back bets in currency per tick on one match's five selections
(home, draw, away, over 2.5, under 2.5), ``[..., 5]``; every group's budget is a share of
the tick's matched liquidity ``L`` (currency per minute), split between the 1X2 and the
O/U market by ``ou_share``.

- **Recreational** money spreads over a market with weights ∝ p_mkt^(1 − longshot_bias)
  times mean-one log-normal noise: with ``longshot_bias`` > 0 long shots get more than their fair
  share (the favourite–longshot bias), which the bookmaker's liability skew turns into
  shorter long-shot prices.
- **Herding** (momentum) money follows the recent move of p_mkt (an exponential average
  of its per-tick changes, kept by the market): it backs selections whose probability
  has been rising. This is the channel through which our own price impact is amplified
  (γ > 0 when it dominates).
- **Informed** (sharp) money backs a selection when the price offers an edge against the
  true probability, p_true · odds − 1 > ``informed_threshold``; it pushes prices back
  toward the truth and so fades our impact when we move a price away from it.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import struct

from market_sim.bookmaker import normalise_markets


@struct.dataclass
class CrowdParams:
    """Shares of liquidity and behaviour of the crowd's groups (scalars).

    Shares are of the tick's liquidity (currency per minute); gains turn a signal
    (probability points per tick for herding, expected return for informed money) into a
    share of the group's budget, capped at 1 per selection.
    """

    recreational_share: Any = 0.6
    longshot_bias: Any = 0.15
    recreational_noise: Any = 0.5
    herding_share: Any = 0.15
    herding_gain: Any = 50.0
    herding_memory: Any = 0.7
    informed_share: Any = 0.25
    informed_gain: Any = 10.0
    informed_threshold: Any = 0.0
    ou_share: Any = 0.3


def recreational_flow(
    normals: Any, market_probability: Any, budget: Any, crowd: CrowdParams
) -> Any:
    """Recreational stakes [5]: weights ∝ p^(1 − bias) per market, times mean-one
    log-normal noise per selection (noise added after normalising, so that it carries
    no bias of its own: with bias 0 the expected flow is proportional to p_mkt)."""
    sigma = crowd.recreational_noise
    noise = jnp.exp(sigma * normals - 0.5 * sigma**2)
    weights = normalise_markets(market_probability ** (1.0 - crowd.longshot_bias)) * noise
    market_budget = jnp.concatenate(
        [jnp.full((3,), 1.0 - crowd.ou_share), jnp.full((2,), crowd.ou_share)]
    )
    return crowd.recreational_share * budget * market_budget * weights


def herding_flow(price_trend: Any, budget: Any, crowd: CrowdParams) -> Any:
    """Herding stakes [5]: back what has been shortening (p_mkt trend > 0, per tick)."""
    pull = jnp.minimum(crowd.herding_gain * jnp.maximum(price_trend, 0.0), 1.0)
    return crowd.herding_share * budget * pull


def informed_flow(true_probability: Any, odds: Any, budget: Any, crowd: CrowdParams) -> Any:
    """Informed stakes [5]: back selections whose expected return beats the threshold."""
    edge = true_probability * odds - 1.0 - crowd.informed_threshold
    pull = jnp.minimum(crowd.informed_gain * jnp.maximum(edge, 0.0), 1.0)
    return crowd.informed_share * budget * pull


def crowd_flows(
    normals: Any,
    market_probability: Any,
    odds: Any,
    true_probability: Any,
    price_trend: Any,
    liquidity: Any,
    crowd: CrowdParams,
) -> tuple[Any, Any, Any]:
    """(recreational, herding, informed) stakes [5] each, currency, for one match-tick;
    ``normals`` [5]: standard normal draws of the recreational noise."""
    return (
        recreational_flow(normals, market_probability, liquidity, crowd),
        herding_flow(price_trend, liquidity, crowd),
        informed_flow(true_probability, odds, liquidity, crowd),
    )

"""Bookmaker margin: de-margining decimal odds into implied probabilities, and back.

One market is the last axis (its outcomes: home/draw/away, over/under, ...); leading axes
are a batch. Every function is pure JAX, jit- and vmap-able; ``method`` is a static
Python string. Probabilities are in [0, 1]; odds are decimal (stake included, > 1).

Preconditions of the jitted functions (checked by :func:`validate_odds` and
:func:`validate_probabilities` at the boundaries, never inside ``jit``): odds finite and
> 1; probabilities finite, in [0, 1] and summing to 1 over the last axis. The iterative
methods (power, Shin, odds ratio) run a fixed number of bisection steps, enough for
float32 (and close to float64 with ``jax_enable_x64``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Final

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from market_sim.checks import require_finite, require_range

METHODS: Final = ("multiplicative", "additive", "power", "shin", "odds_ratio")
# Bisection steps: the brackets below are at most 20 wide, and 2**-60 * 20 is far below
# float32 (and float64) resolution, so the bracket has collapsed to adjacent floats.
BISECTION_STEPS: Final = 60
# Shin's z lives in [0, 1); the upper end is kept off 1, where the formula is 0/0.
_SHIN_Z_MAX: Final = 0.999
# Power exponent and odds-ratio constant are searched as exp(t), t in [-10, 10].
_LOG_BRACKET: Final = 10.0


def _as_float(value: ArrayLike) -> jax.Array:
    """``value`` as a JAX array of the default float type (float32 unless x64 is on)."""
    array = jnp.asarray(value)
    if not jnp.issubdtype(array.dtype, jnp.floating):
        array = array.astype(jnp.asarray(0.0).dtype)
    return array


def _bisect_decreasing(
    fn: Callable[[jax.Array], jax.Array],
    low: jax.Array,
    high: jax.Array,
    steps: int = BISECTION_STEPS,
) -> jax.Array:
    """Root of a non-increasing ``fn`` in [low, high] (elementwise), by fixed bisection.

    If ``fn`` has no sign change the result sits at the end of the bracket nearest the
    root (``low`` when ``fn(low) <= 0``, ``high`` when ``fn(high) > 0``).
    """

    def body(_: int, bracket: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        above = fn(mid) > 0.0
        return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

    lo, hi = lax.fori_loop(0, steps, body, (low, high))
    return 0.5 * (lo + hi)


def booksum(odds: ArrayLike) -> jax.Array:
    """Sum of the inverse odds of a market (1 + overround). odds [..., K] → [...]."""
    return jnp.sum(1.0 / _as_float(odds), axis=-1)


def overround(odds: ArrayLike) -> jax.Array:
    """Bookmaker margin Σ 1/odds − 1 of a market (0.05 = 5 %). odds [..., K] → [...]."""
    return booksum(odds) - 1.0


def _shin_probabilities(inverse_odds: jax.Array, z: jax.Array) -> jax.Array:
    """Shin's probabilities for given z. inverse_odds [..., K], z [...] → [..., K]."""
    total = jnp.sum(inverse_odds, axis=-1, keepdims=True)
    z = z[..., None]
    root = jnp.sqrt(z**2 + 4.0 * (1.0 - z) * inverse_odds**2 / total)
    return (root - z) / (2.0 * (1.0 - z))


@jax.jit
def shin_z(odds: ArrayLike) -> jax.Array:
    """Shin's z (share of insider money) of a market. odds [..., K] → z [...] in [0, 1).

    z solves Σ p_i(z) = 1 for Shin's p_i(z) = (√(z² + 4(1−z) π_i²/B) − z) / (2(1−z)),
    π_i = 1/odds_i, B = Σ π_i. A market without overround (B ≤ 1) has z = 0.
    """
    inverse_odds = 1.0 / _as_float(odds)

    def excess(z: jax.Array) -> jax.Array:
        return jnp.sum(_shin_probabilities(inverse_odds, z), axis=-1) - 1.0

    zeros = jnp.zeros(inverse_odds.shape[:-1], inverse_odds.dtype)
    return _bisect_decreasing(excess, zeros, zeros + _SHIN_Z_MAX)


def _power_exponent(inverse_odds: jax.Array) -> jax.Array:
    """k with Σ π_i^k = 1 (power method). inverse_odds [..., K] → [...]."""

    def excess(log_k: jax.Array) -> jax.Array:
        return jnp.sum(inverse_odds ** jnp.exp(log_k)[..., None], axis=-1) - 1.0

    zeros = jnp.zeros(inverse_odds.shape[:-1], inverse_odds.dtype)
    return jnp.exp(_bisect_decreasing(excess, zeros - _LOG_BRACKET, zeros + _LOG_BRACKET))


def _odds_ratio_probabilities(inverse_odds: jax.Array, c: jax.Array) -> jax.Array:
    """Cheung's odds-ratio probabilities π / (c + π − cπ). [..., K], c [...] → [..., K]."""
    c = c[..., None]
    return inverse_odds / (c + inverse_odds - c * inverse_odds)


def _odds_ratio_constant(inverse_odds: jax.Array) -> jax.Array:
    """c with Σ π_i / (c + π_i − c π_i) = 1 (odds-ratio method). [..., K] → [...]."""

    def excess(log_c: jax.Array) -> jax.Array:
        probabilities = _odds_ratio_probabilities(inverse_odds, jnp.exp(log_c))
        return jnp.sum(probabilities, axis=-1) - 1.0

    zeros = jnp.zeros(inverse_odds.shape[:-1], inverse_odds.dtype)
    return jnp.exp(_bisect_decreasing(excess, zeros - _LOG_BRACKET, zeros + _LOG_BRACKET))


def _normalise(probabilities: jax.Array) -> jax.Array:
    return probabilities / jnp.sum(probabilities, axis=-1, keepdims=True)


@partial(jax.jit, static_argnames=("method",))
def implied_probabilities(odds: ArrayLike, method: str = "multiplicative") -> jax.Array:
    """De-margined outcome probabilities of one market. odds [..., K] → [..., K], sum 1.

    Methods (π = 1/odds, B = Σ π, n = K):
    - ``multiplicative``: π / B.
    - ``additive``: π + (1 − B)/n (can go negative for long shots in a big overround).
    - ``power``: π^k with k such that the sum is 1.
    - ``shin``: Shin (1992/1993), see :func:`shin_z`.
    - ``odds_ratio``: Cheung's odds ratio, π / (c + π − cπ) with c such that the sum is 1.
    They agree with ``penaltyblog.implied.calculate_implied`` (tests check this).
    ``method`` is static (a Python string); under ``jit`` mark it static.
    """
    inverse_odds = 1.0 / _as_float(odds)
    if method == "multiplicative":
        return _normalise(inverse_odds)
    if method == "additive":
        count = inverse_odds.shape[-1]
        total = jnp.sum(inverse_odds, axis=-1, keepdims=True)
        return inverse_odds + (1.0 - total) / count
    if method == "power":
        exponent = _power_exponent(inverse_odds)
        return _normalise(inverse_odds ** exponent[..., None])
    if method == "shin":
        z = shin_z(1.0 / inverse_odds)
        return _normalise(_shin_probabilities(inverse_odds, z))
    if method == "odds_ratio":
        c = _odds_ratio_constant(inverse_odds)
        return _normalise(_odds_ratio_probabilities(inverse_odds, c))
    raise ValueError(f"method: expected one of {METHODS}, got {method!r}")


@partial(jax.jit, static_argnames=("method",))
def apply_margin(
    probabilities: ArrayLike, target_overround: ArrayLike, method: str = "multiplicative"
) -> jax.Array:
    """Decimal odds whose overround is ``target_overround``, inverse of each de-margining.

    probabilities [..., K] (fair, summing to 1), target_overround [...] (0.05 = 5 %)
    → odds [..., K] with ``overround(odds) == target_overround`` and
    ``implied_probabilities(odds, method) == probabilities``.

    - ``multiplicative``: π = p (1 + m).
    - ``additive``: π = p + m/n (precondition: every π < 1).
    - ``power``: π = p^(1/k), k found by bisection.
    - ``shin``: π_i = √(B (z p_i + (1−z) p_i²)) with B = 1 + m and z found by bisection;
      for m ≤ 0 Shin's model has no insiders and this falls back to multiplicative; a
      margin above Σ √p_i − 1 (z = 1) is out of reach and is capped there.
    - ``odds_ratio``: π = c p / (1 − p + c p), c found by bisection.
    Preconditions: probabilities in (0, 1) for power/shin/odds_ratio (a zero probability
    gives infinite odds), target overround > −1.
    """
    fair = _as_float(probabilities)
    target = _as_float(target_overround)
    target_booksum = 1.0 + target
    zeros = jnp.zeros(fair.shape[:-1], fair.dtype)
    if method == "multiplicative":
        inverse_odds = fair * target_booksum[..., None]
    elif method == "additive":
        inverse_odds = fair + (target / fair.shape[-1])[..., None]
    elif method == "power":

        def power_excess(log_s: jax.Array) -> jax.Array:
            return jnp.sum(fair ** jnp.exp(log_s)[..., None], axis=-1) - target_booksum

        log_s = _bisect_decreasing(power_excess, zeros - _LOG_BRACKET, zeros + _LOG_BRACKET)
        inverse_odds = fair ** jnp.exp(log_s)[..., None]
    elif method == "shin":

        def shin_deficit(z: jax.Array) -> jax.Array:
            zz = z[..., None]
            spread = jnp.sum(jnp.sqrt(zz * fair + (1.0 - zz) * fair**2), axis=-1)
            return jnp.sqrt(jnp.maximum(target_booksum, 0.0)) - spread

        z = _bisect_decreasing(shin_deficit, zeros, zeros + 1.0)
        zz = z[..., None]
        shin_inverse = jnp.sqrt(target_booksum[..., None] * (zz * fair + (1.0 - zz) * fair**2))
        multiplicative = fair * target_booksum[..., None]
        inverse_odds = jnp.where(target[..., None] > 0.0, shin_inverse, multiplicative)
    elif method == "odds_ratio":

        def odds_ratio_deficit(log_c: jax.Array) -> jax.Array:
            c = jnp.exp(log_c)[..., None]
            return target_booksum - jnp.sum(c * fair / (1.0 - fair + c * fair), axis=-1)

        log_c = _bisect_decreasing(odds_ratio_deficit, zeros - _LOG_BRACKET, zeros + _LOG_BRACKET)
        c = jnp.exp(log_c)[..., None]
        inverse_odds = c * fair / (1.0 - fair + c * fair)
    else:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    return 1.0 / inverse_odds


def validate_odds(odds: ArrayLike, name: str = "odds") -> None:
    """Raise ``ValueError`` naming ``name`` and the index of a NaN/infinite or ≤ 1 odd."""
    require_finite(name, odds)
    require_range(name, odds, low=1.0, low_inclusive=False)


def validate_probabilities(
    probabilities: ArrayLike,
    name: str = "probabilities",
    *,
    sum_to_one: bool = True,
    atol: float = 1e-4,
) -> None:
    """Raise ``ValueError`` when probabilities are non-finite, outside [0, 1] or a market
    (last axis) does not sum to 1 within ``atol`` (``sum_to_one=False`` skips that check,
    e.g. for independent selections)."""
    require_finite(name, probabilities)
    require_range(name, probabilities, low=0.0, high=1.0)
    if not sum_to_one:
        return
    array = np.asarray(probabilities, dtype=float)
    if array.ndim == 0:
        raise ValueError(f"{name}: expected a market on the last axis, got a scalar")
    totals = array.sum(axis=-1)
    bad = np.abs(totals - 1.0) > atol
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f" at index {index if len(index) > 1 else index[0]}" if index else ""
        raise ValueError(
            f"{name}: expected each market (last axis) to sum to 1 within {atol}, "
            f"got {float(totals[bad].ravel()[0])!r}{where}"
        )

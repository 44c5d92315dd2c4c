"""Core signals of SPEC §3 (VSNR, Conf_W, Decay, CAS) and the γ / market modes of §4.

Everything is per match and per tick, pure JAX, jit- and vmap-able. Rolling windows are
fixed-size ring buffers (:class:`RingBuffer`) held in the simulator's state: push one
value per tick with :func:`ring_push`; the statistics use only the valid entries (the
first W−1 ticks of a match have fewer than W values). Every windowed function also takes
a plain array ``[..., W]``, read as a full window, oldest value first.

Units: probabilities and edges in [0, 1] probability points, minutes of match time,
depth and liquidity in currency, κ dimensionless. Preconditions of the jitted functions
are listed per function; :func:`validate_signal_inputs` checks them at the boundaries.
"""

from __future__ import annotations

from typing import Final

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.typing import ArrayLike

from market_sim.checks import require_finite, require_range

# Market modes of SPEC §4, as integer codes (ordered by γ).
COORDINATION: Final = 0
NEUTRAL: Final = 1
LEADERSHIP: Final = 2
FOOTPRINT: Final = 3
MODE_NAMES: Final = ("coordination", "neutral", "leadership", "footprint")

SHAPES: Final = ("tanh", "sigmoid", "linear")


def _as_float(value: ArrayLike) -> jax.Array:
    """``value`` as a JAX array of the default float type (float32 unless x64 is on)."""
    array = jnp.asarray(value)
    if not jnp.issubdtype(array.dtype, jnp.floating):
        array = array.astype(jnp.asarray(0.0).dtype)
    return array


# --------------------------------------------------------------------------- ring buffer


@struct.dataclass
class RingBuffer:
    """The last W values of a per-tick series. values [..., W]; count, position [...] int32.

    ``count`` = number of valid values (≤ W); ``position`` = slot the next value goes to.
    While ``count < W`` the valid values are slots ``0 .. count−1``.
    """

    values: jax.Array
    count: jax.Array
    position: jax.Array

    @property
    def window(self) -> int:
        """W, the fixed window length (static)."""
        return int(self.values.shape[-1])


def ring_init(
    window: int, shape: tuple[int, ...] = (), dtype: jnp.dtype | None = None
) -> RingBuffer:
    """An empty ring buffer of ``window`` (static int ≥ 1) slots, zero-filled.

    ``shape`` adds leading axes (one independent window per entry, e.g. per match).
    """
    dtype = jnp.asarray(0.0).dtype if dtype is None else dtype
    return RingBuffer(
        values=jnp.zeros((*shape, window), dtype),
        count=jnp.zeros(shape, jnp.int32),
        position=jnp.zeros(shape, jnp.int32),
    )


def ring_push(buffer: RingBuffer, value: ArrayLike) -> RingBuffer:
    """``buffer`` with ``value`` [...] appended, overwriting the oldest when full."""
    window = buffer.window
    slots = jnp.arange(window)
    here = slots == buffer.position[..., None]
    value = jnp.asarray(value, buffer.values.dtype)
    return RingBuffer(
        values=jnp.where(here, value[..., None], buffer.values),
        count=jnp.minimum(buffer.count + 1, window).astype(jnp.int32),
        position=((buffer.position + 1) % window).astype(jnp.int32),
    )


def ring_mask(buffer: RingBuffer) -> jax.Array:
    """Valid slots of ``buffer``: bool [..., W] (slot order, not time order)."""
    return jnp.arange(buffer.window) < buffer.count[..., None]


def ring_ordered(buffer: RingBuffer) -> tuple[jax.Array, jax.Array]:
    """Values oldest first and their validity: ([..., W], bool [..., W]).

    Invalid (not yet filled) entries come first and hold zeros.
    """
    window = buffer.window
    order = (buffer.position[..., None] + jnp.arange(window)) % window
    values = jnp.take_along_axis(buffer.values, order, axis=-1)
    valid = jnp.arange(window) >= (window - buffer.count[..., None])
    return jnp.where(valid, values, 0.0), valid


def _window(series: RingBuffer | ArrayLike) -> tuple[jax.Array, jax.Array]:
    """(values, mask) of a ring buffer, or of a plain array read as a full window."""
    if isinstance(series, RingBuffer):
        return series.values, ring_mask(series)
    values = _as_float(series)
    return values, jnp.ones(values.shape, bool)


def _ordered(series: RingBuffer | ArrayLike) -> tuple[jax.Array, jax.Array]:
    """(values oldest first, mask) of a ring buffer or of a plain array (all valid)."""
    if isinstance(series, RingBuffer):
        return ring_ordered(series)
    values = _as_float(series)
    return values, jnp.ones(values.shape, bool)


def _masked_mean_std(values: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and population std over the valid entries of the last axis (0, 0 if none)."""
    weight = mask.astype(values.dtype)
    count = jnp.maximum(jnp.sum(weight, axis=-1), 1.0)
    mean = jnp.sum(values * weight, axis=-1) / count
    centred = (values - mean[..., None]) * weight
    variance = jnp.sum(centred**2, axis=-1) / count
    return mean, jnp.sqrt(variance)


def _masked_correlation(
    first: jax.Array, second: jax.Array, mask: jax.Array, tiny: float = 1e-12
) -> jax.Array:
    """Pearson correlation over valid entries of the last axis; 0 when a side is flat."""
    weight = mask.astype(first.dtype)
    count = jnp.maximum(jnp.sum(weight, axis=-1, keepdims=True), 1.0)
    first_c = (first - jnp.sum(first * weight, axis=-1, keepdims=True) / count) * weight
    second_c = (second - jnp.sum(second * weight, axis=-1, keepdims=True) / count) * weight
    covariance = jnp.sum(first_c * second_c, axis=-1)
    scale = jnp.sqrt(jnp.sum(first_c**2, axis=-1) * jnp.sum(second_c**2, axis=-1))
    flat = scale <= tiny
    correlation = covariance / jnp.where(flat, 1.0, scale)
    return jnp.where(flat, 0.0, jnp.clip(correlation, -1.0, 1.0))


# ------------------------------------------------------------------------ rolling signals


def vsnr(edges: RingBuffer | ArrayLike, eps: float = 1e-6, min_count: int = 2) -> jax.Array:
    """Variance-sensitive signal-to-noise of the edge: mean(e) / (std(e) + eps).

    edges: ring buffer or array [..., W] of e_t = p_model − p_mkt (probability points)
    → [...], dimensionless. Population std over the valid entries; 0 while fewer than
    ``min_count`` values are in the window (one value has no noise estimate). Note a
    nearly constant edge gives a very large VSNR (std → 0); ``eps`` is the SPEC's 1e-6.
    """
    values, mask = _window(edges)
    mean, std = _masked_mean_std(values, mask)
    enough = jnp.sum(mask, axis=-1) >= min_count
    return jnp.where(enough, mean / (std + eps), 0.0)


def vsnr_sigma(vsnr_history: RingBuffer | ArrayLike, floor: float = 1e-3) -> jax.Array:
    """σ_VSNR: rolling population std of VSNR, floored. history [..., W] → [...] ≥ floor."""
    values, mask = _window(vsnr_history)
    _, std = _masked_mean_std(values, mask)
    return jnp.maximum(std, floor)


def momentum_corr(
    momentum_diff: RingBuffer | ArrayLike, prob_changes: RingBuffer | ArrayLike
) -> jax.Array:
    """Momentum_Corr: rolling Pearson corr of momentum differential and Δp_mkt (home).

    momentum_diff, prob_changes: ring buffers pushed on the same ticks (or arrays
    [..., W]) → [...] in [−1, 1]; 0 while either side is flat or has < 2 values.
    """
    first, first_mask = _window(momentum_diff)
    second, second_mask = _window(prob_changes)
    return _masked_correlation(first, second, first_mask & second_mask)


def vol_idx(
    log_odds_changes: RingBuffer | ArrayLike, reference: ArrayLike, high: float = 3.0
) -> jax.Array:
    """Vol_Idx: rolling std of log-odds changes / its long-run reference, clipped [0, high].

    log_odds_changes [..., W] (per tick, dimensionless), reference [...] > 0 (same units)
    → [...] in [0, high].
    """
    values, mask = _window(log_odds_changes)
    _, std = _masked_mean_std(values, mask)
    return jnp.clip(std / _as_float(reference), 0.0, high)


def depth_ratio(depth: ArrayLike, depth_ref: ArrayLike, high: float = 3.0) -> jax.Array:
    """Depth_Ratio: available depth on our side / reference depth, clipped to [0, high].

    depth, depth_ref [...] in currency (depth_ref > 0) → [...].
    """
    return jnp.clip(_as_float(depth) / _as_float(depth_ref), 0.0, high)


# ------------------------------------------------------------------- Conf_W, Decay, CAS


def time_decay(minute: ArrayLike, t_break: float = 85.0, alpha: float = 0.7) -> jax.Array:
    """Decay(t) = 1 / (1 + exp(α (t − t_break))). minute [...] (match minutes) → (0, 1).

    Decay(t_break) = 0.5; strictly decreasing in t for α > 0.
    """
    return jax.nn.sigmoid(-alpha * (_as_float(minute) - t_break))


def confidence_weight(
    momentum_corr: ArrayLike,
    vol_idx: ArrayLike,
    depth_ratio: ArrayLike,
    kappa: ArrayLike,
    shape: str = "tanh",
    floor: float = 0.4,
    ceiling: float = 1.0,
) -> jax.Array:
    """Conf_W = clip(floor + (ceiling − floor) · g(κ · MC · VI · (1 + DR)), floor, ceiling).

    Inputs broadcast together ([...]) → [...] in [floor, ceiling] = [0.4, 1.0].
    ``shape`` (static) picks g: ``tanh`` (the SPEC), ``sigmoid`` (logistic σ(x), so 0.7
    at x = 0 instead of 0.4: a different prior, for the meta-learner) or ``linear``
    (g(x) = x, saturating at x = 1 by the clip). NaN inputs give the floor.
    """
    x = _as_float(kappa) * _as_float(momentum_corr) * _as_float(vol_idx)
    x = x * (1.0 + _as_float(depth_ratio))
    if shape == "tanh":
        squashed = jnp.tanh(x)
    elif shape == "sigmoid":
        squashed = jax.nn.sigmoid(x)
    elif shape == "linear":
        squashed = x
    else:
        raise ValueError(f"shape: expected one of {SHAPES}, got {shape!r}")
    weight = floor + (ceiling - floor) * squashed
    return jnp.clip(jnp.nan_to_num(weight, nan=floor), floor, ceiling)


def calibrate_kappa(
    kappa_history: ArrayLike,
    target_cas1: ArrayLike,
    realized_cas1: ArrayLike,
    step: float = 0.05,
    low: float = 0.5,
    high: float = 1.5,
) -> tuple[jax.Array, jax.Array]:
    """One κ calibration after an evaluation window: clipped update, then running median.

    kappa_history [..., H] (the last H = 3 raw κ values, oldest first; start with
    [κ0, κ0, κ0]); target_cas1, realized_cas1 [...] = shares of decisions with CAS ≥ 1.
    The κ in use is the median of the history; the raw update is
    clip(κ_in_use + step · (target − realized), low, high), appended to the history;
    the new κ in use is the median of the new history. A one-window spike of
    realized_cas1 therefore never reaches the κ in use.
    Returns (new_kappa [...] in [low, high], new_history [..., H]).
    """
    history = _as_float(kappa_history)
    current = jnp.median(history, axis=-1)
    update = step * (_as_float(target_cas1) - _as_float(realized_cas1))
    raw = jnp.clip(current + update, low, high)
    new_history = jnp.concatenate([history[..., 1:], raw[..., None]], axis=-1)
    return jnp.median(new_history, axis=-1), new_history


def corridor_liq(sigma_vsnr: ArrayLike, liquidity: ArrayLike, depth_ref: ArrayLike) -> jax.Array:
    """Corridor_Liq = σ_VSNR · √(Liq / Depth_ref). Inputs [...] (currency) → [...] ≥ 0."""
    ratio = jnp.maximum(_as_float(liquidity) / _as_float(depth_ref), 0.0)
    return _as_float(sigma_vsnr) * jnp.sqrt(ratio)


def critical_action_signal(
    vsnr: ArrayLike,
    decay: ArrayLike,
    conf_w: ArrayLike,
    corridor: ArrayLike,
    uncertainty: ArrayLike = 0.0,
    min_corridor: float = 1e-6,
) -> jax.Array:
    """CAS = VSNR · Decay · Conf_W / Corridor_Liq · (1 − u). Inputs [...] → [...].

    ``uncertainty`` u ∈ [0, 1) is the model's epistemic uncertainty. The corridor is
    floored at ``min_corridor`` (an empty market, Liq = 0, would divide by zero); a
    candidate bet is CAS ≥ the action threshold (config, default 1.0).
    """
    corridor = jnp.maximum(_as_float(corridor), min_corridor)
    signal = _as_float(vsnr) * _as_float(decay) * _as_float(conf_w) / corridor
    return signal * (1.0 - _as_float(uncertainty))


# -------------------------------------------------------------------- γ and market modes


def market_sensitivity(
    our_flow: RingBuffer | ArrayLike,
    price_moves: RingBuffer | ArrayLike,
    horizon: int = 3,
) -> jax.Array:
    """γ: correlation of our signed stake flow at tick t with the p_mkt move over t+1..t+k.

    our_flow: signed stake per tick (currency, + backs the outcome); price_moves:
    p_mkt[t] − p_mkt[t−1] per tick (probability points); both ring buffers pushed on
    the same ticks (or arrays [..., N], oldest first; N = 50 by default config).
    → γ [...] in [−1, 1]; 0 while fewer than 2 pairs (N ≥ k + 2 ticks) exist.
    ``horizon`` k may be traced.
    """
    flow, flow_valid = _ordered(our_flow)
    moves, moves_valid = _ordered(price_moves)
    moves = jnp.where(moves_valid, moves, 0.0)
    length = flow.shape[-1]
    ticks = jnp.arange(length)
    cumulative = jnp.cumsum(moves, axis=-1)
    ahead = jnp.clip(ticks + horizon, 0, length - 1)
    future_move = jnp.take(cumulative, ahead, axis=-1) - cumulative
    valid = flow_valid & moves_valid & (ticks + horizon <= length - 1)
    return _masked_correlation(flow, future_move, valid)


def update_mode(
    mode: ArrayLike,
    gamma: ArrayLike,
    signal_corr: ArrayLike,
    hysteresis: float = 0.03,
    coordination_below: float = -0.08,
    leadership_above: float = 0.52,
    footprint_corr_below: float = 0.3,
) -> jax.Array:
    """Next market mode from the current one, γ and corr(our signal, market signal).

    mode [...] int32 (COORDINATION, NEUTRAL, LEADERSHIP, FOOTPRINT); gamma, signal_corr
    [...] → mode [...] int32. A mode is entered at its threshold and left only after
    crossing it by ``hysteresis`` the other way: coordination for γ < −0.08 (left above
    −0.05), leadership for γ > 0.52 (left below 0.49), footprint = leadership with
    signal_corr < 0.3 (back to leadership above 0.33), otherwise neutral.
    """
    mode = jnp.asarray(mode, jnp.int32)
    gamma = _as_float(gamma)
    signal_corr = _as_float(signal_corr)
    was_coordination = mode == COORDINATION
    was_leading = (mode == LEADERSHIP) | (mode == FOOTPRINT)
    coordination = jnp.where(
        was_coordination, gamma <= coordination_below + hysteresis, gamma < coordination_below
    )
    leading = jnp.where(
        was_leading, gamma >= leadership_above - hysteresis, gamma > leadership_above
    )
    uncorrelated = jnp.where(
        mode == FOOTPRINT,
        signal_corr <= footprint_corr_below + hysteresis,
        signal_corr < footprint_corr_below,
    )
    following = jnp.where(coordination, COORDINATION, NEUTRAL)
    return jnp.where(leading, jnp.where(uncorrelated, FOOTPRINT, LEADERSHIP), following).astype(
        jnp.int32
    )


def loss_mix(
    mode: ArrayLike, internal_weights: tuple[float, float, float, float] = (0.3, 1.0, 1.0, 1.0)
) -> tuple[jax.Array, jax.Array]:
    """(internal_weight, market_weight) of the predictive model's loss for a mode.

    mode [...] int → two arrays [...] summing to 1. ``internal_weights`` is indexed by
    mode code: coordination 0.3 (0.3 internal + 0.7 market, SPEC §4), footprint 1.0
    (internal only); neutral and leadership default to 1.0 (config).
    """
    table = jnp.asarray(internal_weights, jnp.asarray(0.0).dtype)
    internal = table[jnp.clip(jnp.asarray(mode, jnp.int32), 0, len(MODE_NAMES) - 1)]
    return internal, 1.0 - internal


# ---------------------------------------------------------------------------- validation


def validate_signal_inputs(
    *,
    minute: ArrayLike | None = None,
    momentum_corr: ArrayLike | None = None,
    vol_idx: ArrayLike | None = None,
    depth_ratio: ArrayLike | None = None,
    kappa: ArrayLike | None = None,
    uncertainty: ArrayLike | None = None,
    liquidity: ArrayLike | None = None,
    depth: ArrayLike | None = None,
    depth_ref: ArrayLike | None = None,
    edges: ArrayLike | None = None,
    mode: ArrayLike | None = None,
) -> None:
    """Check the preconditions of this module's jitted functions on concrete values.

    Raises ``ValueError`` naming the argument and the first offending index. Only the
    arguments given are checked.
    """
    if minute is not None:
        require_range("minute", minute, low=0.0)
    if momentum_corr is not None:
        require_range("momentum_corr", momentum_corr, low=-1.0, high=1.0)
    if vol_idx is not None:
        require_range("vol_idx", vol_idx, low=0.0)
    if depth_ratio is not None:
        require_range("depth_ratio", depth_ratio, low=0.0)
    if kappa is not None:
        require_range("kappa", kappa, low=0.0, low_inclusive=False)
    if uncertainty is not None:
        require_range("uncertainty", uncertainty, low=0.0, high=1.0, high_inclusive=False)
    if liquidity is not None:
        require_range("liquidity", liquidity, low=0.0)
    if depth is not None:
        require_range("depth", depth, low=0.0)
    if depth_ref is not None:
        require_range("depth_ref", depth_ref, low=0.0, low_inclusive=False)
    if edges is not None:
        require_range("edges", edges, low=-1.0, high=1.0)
    if mode is not None:
        require_finite("mode", mode)
        array = np.asarray(mode)
        bad = ~np.isin(array, np.arange(len(MODE_NAMES)))
        if bad.any():
            where = ""
            if array.ndim:
                index = tuple(int(i) for i in np.argwhere(bad)[0])
                where = f" at index {index[0] if len(index) == 1 else index}"
            raise ValueError(
                f"mode: expected one of {list(range(len(MODE_NAMES)))} {MODE_NAMES}, "
                f"got {array[bad].ravel()[0]!r}{where}"
            )

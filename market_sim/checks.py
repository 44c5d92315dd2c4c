"""Boundary checks shared by the simulator's parameter builders and validators.

The jitted core never checks its inputs (no Python control flow on traced values);
these helpers run on concrete values where parameters are built or data enters, and
raise a ``ValueError`` that names the field, the offending index and the expectation.
Traced values (inside ``jit``/``vmap``) are skipped silently: they were checked when
they were concrete.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_traced(value: Any) -> bool:
    """True when ``value`` is a JAX tracer (abstract value inside a transformation)."""
    try:
        import jax

        return isinstance(value, jax.core.Tracer)
    except Exception:  # pragma: no cover - jax always importable in this package
        return False


def _first_bad_index(mask: np.ndarray) -> tuple[int, ...] | int:
    index = tuple(int(i) for i in np.argwhere(mask)[0])
    return index[0] if len(index) == 1 else index


def require_finite(name: str, value: Any) -> None:
    """Raise when any element of ``value`` is NaN or infinite."""
    if is_traced(value):
        return
    array = np.asarray(value, dtype=float)
    bad = ~np.isfinite(array)
    if bad.any():
        index = _first_bad_index(bad) if array.ndim else ()
        raise ValueError(
            f"{name}: expected finite values, got {array[bad].ravel()[0]!r}"
            + (f" at index {index}" if array.ndim else "")
        )


def require_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raise when any element of ``value`` is non-finite or outside [low, high].

    Open bounds are chosen with ``low_inclusive``/``high_inclusive``.
    """
    if is_traced(value):
        return
    require_finite(name, value)
    array = np.asarray(value, dtype=float)
    bad = np.zeros(array.shape, dtype=bool)
    if low is not None:
        bad |= (array < low) if low_inclusive else (array <= low)
    if high is not None:
        bad |= (array > high) if high_inclusive else (array >= high)
    if bad.any():
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        interval = (
            f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        )
        where = f" at index {_first_bad_index(bad)}" if array.ndim else ""
        raise ValueError(
            f"{name}: expected values in {interval}, got {array[bad].ravel()[0]!r}{where}"
        )

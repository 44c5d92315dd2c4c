"""Shared test configuration: GPU tests skip cleanly without a CUDA device; the real
data folder (../shared/data) is located once."""

from __future__ import annotations

from pathlib import Path

import jax
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# Many tests jit the same environment step, rollout and evaluator for the same layout;
# XLA's persistent cache lets a test (or the other xdist worker) reuse a compilation
# instead of repeating it. Only a cache: deleting it changes nothing but the time.
jax.config.update("jax_compilation_cache_dir", str(REPO_ROOT / ".pytest_cache" / "jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _has_gpu() -> bool:
    try:
        return any(device.platform == "gpu" for device in jax.devices())
    except Exception:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_gpu():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (none found by jax)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; the real-data tests need it (CI has it there too)."""
    if not (SHARED_DATA / "football-data").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA

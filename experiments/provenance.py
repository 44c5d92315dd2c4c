"""Run provenance: git commit, package versions and machine, recorded with every result."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Packages whose versions are recorded with every run.
PACKAGES = (
    "jax",
    "jaxlib",
    "flax",
    "numpy",
    "pandas",
    "scipy",
    "hydra-core",
    "gymnasium",
    "pettingzoo",
    "stable-baselines3",
    "torch",
    "wandb",
)


def git_commit() -> str:
    """The repository's HEAD commit, with ``-dirty`` when the work tree has changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance() -> dict[str, Any]:
    """Commit, versions, machine and time of this run (JSON-serialisable)."""
    import os

    return {
        "git_commit": git_commit(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "time_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }

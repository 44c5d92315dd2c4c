"""Plots and markdown of the calibration report (sim against real)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from market_sim.calibrate import EVENT_COLUMNS, GoalTiming

REAL_COLOUR = "#1f3b73"
SIM_COLOUR = "#e0792b"


def _goals_per_match(ax: Any, frame: pd.DataFrame, counts: dict[str, np.ndarray]) -> None:
    real = (frame["home_goals"] + frame["away_goals"]).to_numpy()
    sim = counts["home_goals"] + counts["away_goals"]
    bins = np.arange(0, 11)
    real_share = np.bincount(np.minimum(real, 10).astype(int), minlength=11) / real.size
    sim_share = np.bincount(np.minimum(sim, 10).astype(int), minlength=11) / sim.size
    ax.bar(bins - 0.2, real_share, width=0.4, color=REAL_COLOUR, label=f"real (n={real.size})")
    ax.bar(bins + 0.2, sim_share, width=0.4, color=SIM_COLOUR, label=f"sim (n={sim.size})")
    ax.set_xticks(bins, [*map(str, bins[:-1]), "10+"])
    ax.set_xlabel("goals in the match (both sides)")
    ax.set_ylabel("share of matches")
    ax.set_title("Goals per match")
    ax.legend()


def _goal_minutes(ax: Any, timing: GoalTiming, counts: dict[str, np.ndarray]) -> None:
    minutes = np.arange(1, 91)
    real = np.asarray(timing.minute_counts, dtype=float)
    real /= real.sum()
    sim = counts["minute_histogram"] / counts["minute_histogram"].sum()
    ax.plot(minutes, real, color=REAL_COLOUR, label=f"real goal minutes (n={timing.goals})")
    ax.plot(minutes, sim, color=SIM_COLOUR, label="sim")
    ax.set_xlabel("minute (stoppage time folded into 45 and 90, as in the source)")
    ax.set_ylabel("share of goals")
    ax.set_title("Goal minutes")
    ax.legend()


def _events(ax: Any, frame: pd.DataFrame, counts: dict[str, np.ndarray]) -> None:
    fields = [*EVENT_COLUMNS, "red_cards"]
    columns = {**EVENT_COLUMNS, "red_cards": ("home_red", "away_red")}
    real = [float((frame[columns[f][0]] + frame[columns[f][1]]).mean()) for f in fields]
    sim = [float((counts[f"home_{f}"] + counts[f"away_{f}"]).mean()) for f in fields]
    x = np.arange(len(fields))
    ax.bar(x - 0.2, real, width=0.4, color=REAL_COLOUR, label="real")
    ax.bar(x + 0.2, sim, width=0.4, color=SIM_COLOUR, label="sim")
    for i, (r, s) in enumerate(zip(real, sim, strict=True)):
        ax.text(i + 0.2, s, f"{(s - r) / r:+.1%}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [f.replace("_", " ") for f in fields], rotation=20)
    ax.set_ylabel("per match, both sides")
    ax.set_title("Event counts (label: sim vs real)")
    ax.legend()


def _score_matrix(
    axes: Any, frame: pd.DataFrame, counts: dict[str, np.ndarray], size: int = 6
) -> None:
    def matrix(home: np.ndarray, away: np.ndarray) -> np.ndarray:
        grid = np.zeros((size, size))
        np.add.at(
            grid,
            (np.minimum(home, size - 1).astype(int), np.minimum(away, size - 1).astype(int)),
            1,
        )
        return grid / home.size

    real = matrix(frame["home_goals"].to_numpy(), frame["away_goals"].to_numpy())
    sim = matrix(counts["home_goals"], counts["away_goals"])
    labels = [*map(str, range(size - 1)), f"{size - 1}+"]
    vmax = max(real.max(), sim.max())
    for ax, grid, title in ((axes[0], real, "real"), (axes[1], sim, "sim")):
        ax.imshow(grid, cmap="Blues", vmin=0, vmax=vmax)
        for i in range(size):
            for j in range(size):
                ax.text(j, i, f"{grid[i, j]:.1%}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(size), labels)
        ax.set_yticks(range(size), labels)
        ax.set_xlabel("away goals")
        ax.set_ylabel("home goals")
        ax.set_title(f"Score matrix, {title}")
    difference = (sim - real) * 100
    limit = max(np.abs(difference).max(), 0.5)
    axes[2].imshow(difference, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for i in range(size):
        for j in range(size):
            axes[2].text(j, i, f"{difference[i, j]:+.1f}", ha="center", va="center", fontsize=7)
    axes[2].set_xticks(range(size), labels)
    axes[2].set_yticks(range(size), labels)
    axes[2].set_xlabel("away goals")
    axes[2].set_ylabel("home goals")
    axes[2].set_title("sim − real (pp)")


def write_plots(
    out_dir: Path,
    frame: pd.DataFrame,
    counts: dict[str, np.ndarray],
    timing: GoalTiming,
    replications: int,
) -> dict[str, str]:
    """Write the four report figures; returns {title: file name}."""
    del replications
    files = {}
    for name, title, draw, shape in (
        ("goals_per_match.png", "Goals per match", _goals_per_match, None),
        ("goal_minutes.png", "Goal minutes", None, None),
        ("event_counts.png", "Event counts", _events, None),
    ):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        if name == "goal_minutes.png":
            _goal_minutes(ax, timing, counts)
        else:
            assert draw is not None
            draw(ax, frame, counts)
        del shape
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        files[title] = name
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    _score_matrix(axes, frame, counts)
    fig.tight_layout()
    fig.savefig(out_dir / "score_matrix.png", dpi=110)
    plt.close(fig)
    files["Score matrix"] = "score_matrix.png"
    return files


def write_markdown(path: Path, document: dict[str, Any], plots: dict[str, str]) -> None:
    """The human-readable report: verdict, table, fitted structure, gaps, plots."""
    extra = document["extra"]
    lines = [
        f"# Match-engine calibration: {document['league']} ({document['mode'].replace('_', '-')})",
        "",
        f"Fit seasons {', '.join(document['fit_seasons'])}; test seasons "
        f"{', '.join(document['test_seasons'])}; {extra['matches']['test']} real test matches "
        f"against {extra['replications']} simulated replications of each fixture.",
        f"**Overall: {'PASS' if document['pass'] else 'FAIL'}** "
        f"({sum(r['pass'] for r in document['stats'].values())}/{len(document['stats'])} "
        "statistics within tolerance).",
        "",
        "| statistic | real | sim | error | tolerance | pass |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for name, row in document["stats"].items():
        relative = row["tolerance_kind"] == "relative"
        error = f"{row['rel_err']:.1%}" if relative else f"{row['abs_err']:.3f}"
        tolerance = f"±{row['tolerance']:.0%}" if relative else f"±{row['tolerance']:.3f}"
        if "real_low" in row:
            tolerance = f"real 95% CI [{row['real_low']:.3f}, {row['real_high']:.3f}]"
        lines.append(
            f"| {name} | {row['real']:.3f} | {row['sim']:.3f} | {error} | {tolerance} | "
            f"{'yes' if row['pass'] else '**no**'} |"
        )
    rho = extra["dixon_coles_rho"]
    lines += [
        "",
        f"Market statistics: {extra['market']}.",
        "",
        "`share_goals_minute_86_plus` (real) comes from the pooled club goal-minute data "
        "(goal-times, 2012-15), not from the test league, which has no goal minutes.",
        f"Dixon–Coles ρ fitted to the real test matches: {rho['real']:+.3f}; to the simulated "
        f"ones: {rho['sim']:+.3f} (the engine's score-state effects create the low-score "
        "dependence; ρ on a few seasons has a standard error of about 0.03).",
        "",
        "## Fitted engine structure (simulated method of moments)",
        "",
        "| parameter | value |",
        "|---|---:|",
    ]
    for name, value in extra["structural_fit"]["values"].items():
        lines.append(f"| {name} | {value:+.4f} |")
    lines += ["", "| moment (fit seasons) | target | achieved |", "|---|---:|---:|"]
    fit = extra["structural_fit"]
    for name, value in fit["targets"].items():
        lines.append(f"| {name} | {value:.4f} | {fit['achieved'][name]:.4f} |")
    timing = extra["goal_timing"]
    lines += [
        "",
        f"Goal timing ({timing['goals']} goals): first-half slope "
        f"{timing['first_half_slope']:+.3f}, "
        f"second-half slope {timing['second_half_slope']:+.3f} (log-rate per half), stoppage "
        f"means {timing['stoppage_first_mean']:.2f} and {timing['stoppage_second_mean']:.2f} "
        "minutes (at the rate of the half's last minute).",
    ]
    if extra["gap_analysis"]:
        lines += [
            "",
            "## Error against the gap between fit and test",
            "",
            "| season | gap | goals_total err | H/D/A max err (pp) | events max err | passes |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for entry in extra["gap_analysis"]:
            stats = entry["stats"]
            hda = max(
                stats[k]["abs_err"] for k in ("share_home_win", "share_draw", "share_away_win")
            )
            events = max(
                stats[k]["rel_err"] for k in ("shots", "shots_on_target", "corners", "fouls")
            )
            passes = sum(r["pass"] for r in stats.values())
            lines.append(
                f"| {entry['season']} | {entry['gap']} | {stats['goals_total']['rel_err']:.1%} | "
                f"{hda * 100:.1f} | {events:.1%} | {passes}/{len(stats)} |"
            )
    lines += ["", "## Plots", ""]
    for title, file in plots.items():
        lines += [f"### {title}", "", f"![{title}]({file})", ""]
    run = document["run"]
    lines += [
        "## Run",
        "",
        f"commit `{run['git_commit']}`, {run['machine']}, {run['time_utc']}, "
        f"{run['seconds']} s. Resolved config and package versions: `calibration.json` → `run`.",
    ]
    path.write_text("\n".join(lines) + "\n")

"""The evaluation report: a comparison table (terminal and markdown) and PNG plots.

Plots (one line or bar group per policy):
- ``equity.png``: compounded wealth over the rounds of a seed, median over seeds with a
  10–90% band (log scale);
- ``drawdown.png``: the compounded equity's fall below its running peak, median over seeds;
- ``stake_by_minute.png``: share of the staked amount by match minute (pre-match, then
  15-minute bins);
- ``cas_at_bet.png``: the distribution of CAS at the ticks where a bet was filled.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from agents.evaluation import Trajectories

TABLE_METRICS = (
    ("log_growth", "log-growth/round", "{:+.4f}"),
    ("roi", "ROI", "{:+.1%}"),
    ("turnover", "turnover", "{:.2f}"),
    ("hit_rate", "hit rate", "{:.1%}"),
    ("max_drawdown", "max DD", "{:.1%}"),
    ("sharpe", "Sharpe", "{:+.2f}"),
    ("sortino", "Sortino", "{:+.2f}"),
    ("var95", "VaR95", "{:.1%}"),
    ("cvar95", "CVaR95", "{:.1%}"),
    ("clv", "CLV", "{:+.1%}"),
    ("cap_utilisation", "cap use", "{:.0%}"),
)
MINUTE_BINS = (0, 15, 30, 45, 60, 75, 90, 200)


def _fmt(template: str, value: Any) -> str:
    return "—" if value is None else template.format(value)


def comparison_rows(document: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table (mean [95% CI] of log-growth, means else)."""
    header = ["policy", *[label for _, label, _ in TABLE_METRICS], "Δ vs best baseline"]
    rows = []
    paired = document.get("paired_vs_best_baseline", {})
    for name, metrics in document["policies"].items():
        growth = metrics["log_growth"]
        cells = [name]
        for key, _, template in TABLE_METRICS:
            cell = _fmt(template, metrics[key]["mean"])
            if key == "log_growth" and growth["ci95"][0] is not None:
                low, high = growth["ci95"]
                cell += f" [{low:+.4f}, {high:+.4f}]"
            cells.append(cell)
        if name in paired and paired[name]["mean"] is not None:
            low, high = paired[name]["ci95"]
            cells.append(f"{paired[name]['mean']:+.4f} [{low:+.4f}, {high:+.4f}]")
        else:
            cells.append("(best)" if name == document.get("best_baseline") else "")
        rows.append(cells)
    return header, rows


def text_table(document: dict[str, Any]) -> str:
    header, rows = comparison_rows(document)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def markdown_table(document: dict[str, Any]) -> str:
    header, rows = comparison_rows(document)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _chains(trajectories: Trajectories) -> np.ndarray:
    """Compounded wealth per seed at each tick of its chained rounds [S, R × T + 1]."""
    t = trajectories
    relative = t.equity / t.bankroll
    seeds = len(t.seeds)
    paths = relative.reshape(seeds, t.rounds, -1)
    growth = np.cumprod(paths[:, :, -1], axis=1)
    start = np.concatenate([np.ones((seeds, 1)), growth[:, :-1]], axis=1)
    chained = (start[:, :, None] * paths[:, :, 1:]).reshape(seeds, -1)
    return np.concatenate([np.ones((seeds, 1)), chained], axis=1)


def _finish(fig: Any, ax: Any, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Label, legend, save (PNG, 110 dpi) and close one plot."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(out_dir: Path, trajectories: dict[str, Trajectories]) -> dict[str, Path]:
    """Write the four plots; returns {name: path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    colours = plt.get_cmap("tab10")

    fig, ax = plt.subplots(figsize=(9, 5))
    for i, (name, t) in enumerate(trajectories.items()):
        per_round = _chains(t)[:, :: t.equity.shape[1] - 1]  # round boundaries
        x = np.arange(per_round.shape[1])
        median = np.median(per_round, axis=0)
        low, high = np.percentile(per_round, [10, 90], axis=0)
        ax.plot(x, median, color=colours(i), label=name)
        ax.fill_between(x, low, high, color=colours(i), alpha=0.15)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    paths["equity"] = _finish(
        fig,
        ax,
        out_dir / "equity.png",
        "round (slate)",
        "wealth / starting bankroll (log scale)",
        "Equity: median over held-out seeds, 10–90% band",
    )

    fig, ax = plt.subplots(figsize=(9, 5))
    for i, (name, t) in enumerate(trajectories.items()):
        chain = _chains(t)
        drawdown = 1.0 - chain / np.maximum.accumulate(chain, axis=1)
        x = np.arange(chain.shape[1]) / (t.equity.shape[1] - 1)
        ax.plot(x, np.median(drawdown, axis=0), color=colours(i), label=name)
    paths["drawdown"] = _finish(
        fig,
        ax,
        out_dir / "drawdown.png",
        "round (slate)",
        "drawdown from running peak",
        "Drawdown: median over held-out seeds",
    )

    labels = [
        "pre-match",
        *[f"{a}–{b}" for a, b in itertools.pairwise(MINUTE_BINS[:-1])],
        "90+",
    ]
    fig, ax = plt.subplots(figsize=(9, 5))
    active = [(n, t) for n, t in trajectories.items() if t.fills.sum() > 0]
    width = 0.8 / max(len(active), 1)
    for i, (name, t) in enumerate(active):
        stake = t.fills.sum(axis=3)  # [E, T, M]
        pre = stake * t.pre_match[:, :, None]
        in_play = stake * ~t.pre_match[:, :, None]
        shares = [pre.sum()]
        for low, high in itertools.pairwise(MINUTE_BINS):
            mask = (t.minute >= low) & (t.minute < high) if low > 0 else (t.minute < high)
            shares.append((in_play * mask).sum())
        shares_array = np.asarray(shares) / max(stake.sum(), 1e-12)
        ax.bar(
            np.arange(len(labels)) + i * width,
            shares_array,
            width,
            label=name,
            color=colours(list(trajectories).index(name)),
        )
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2)
    ax.set_xticklabels(labels)
    paths["stake_by_minute"] = _finish(
        fig,
        ax,
        out_dir / "stake_by_minute.png",
        "match minute of the bet",
        "share of staked amount",
        "Stake by minute",
    )

    fig, ax = plt.subplots(figsize=(9, 5))
    bins = np.linspace(-3.0, 5.0, 41)
    for name, t in active:
        filled = t.fills > 0
        values = np.clip(t.cas[filled], bins[0], bins[-1])
        if values.size:
            ax.hist(
                values,
                bins=bins,
                histtype="step",
                density=True,
                lw=1.5,
                label=name,
                color=colours(list(trajectories).index(name)),
            )
    ax.axvline(1.0, color="grey", ls=":", lw=1.0, label="CAS threshold 1.0")
    paths["cas_at_bet"] = _finish(
        fig,
        ax,
        out_dir / "cas_at_bet.png",
        "CAS at bet time (clipped to [−3, 5])",
        "density of filled bets",
        "CAS when bets were filled",
    )
    return paths


def write_markdown(path: Path, document: dict[str, Any], plots: dict[str, Path]) -> None:
    """``report.md``: setup, the comparison table, paired differences, plots."""
    lines = [
        f"# Evaluation: {document['experiment']} ({document['regime']})",
        "",
        f"{len(document['seeds'])} held-out seeds × {document['rounds']} slates each, common "
        "random numbers for every policy; mean over seeds with 95% bootstrap intervals. "
        f"Best baseline (excluding oracle_kelly): **{document['best_baseline']}**.",
        "",
        markdown_table(document),
        "",
        "Paired difference = per-seed log-growth of the policy minus the best baseline's.",
        "oracle_kelly reads the hidden true probabilities (a reference, not a policy; not an "
        "upper bound on what a policy can earn when the Hard-Cap binds).",
        "",
    ]
    if document.get("training"):
        training = document["training"]
        lines += [
            f"Training: {training.get('env_steps', 0):,} environment steps in "
            f"{training.get('seconds', 0)} s"
            + (" (stopped at the time budget)" if training.get("stopped_early") else "")
            + ".",
            "",
        ]
    for name, plot in plots.items():
        lines += [f"![{name}]({plot.name})", ""]
    lines += [f"Commit {document['run']['git_commit']}; config in results.json."]
    path.write_text("\n".join(lines))

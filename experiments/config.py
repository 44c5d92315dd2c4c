"""Structured (typed) configuration of the train / evaluate / stress / export entry points.

Hydra composes ``conf/<entry>.yaml`` from the groups ``market``, ``env``, ``regime``,
``agent``, ``policy``, ``logger``, ``evaluation`` and the optional preset ``experiment``
onto ``ExperimentConfig``: a key that is not a field (a typo) is an error that names it.
The regime group is a ``market_sim.regimes.Regime`` in YAML, validated by
``regime_from_config`` (unknown keys named). ``validate`` checks values and choices.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from agents.baselines import BASELINE_NAMES
from agents.jax_ppo import PPOConfig
from envs.config import ENV_DEFAULTS
from market_sim.regimes import REGIME_NAMES, Regime, regime_from_config

#: Environment options that describe the market (group ``market``); the rest are ``env``.
MARKET_KEYS = ("league", "n_matches", "pre_match_ticks", "bankroll")
AGENT_NAMES = ("jax_ppo", "ppo", "a2c", "sac", "td3", "recurrent_ppo")
LOGGER_MODES = ("offline", "online", "disabled")

# JAX logs its search for TPU/GPU plugins at INFO, which Hydra would print.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)


@dataclass
class MarketConfig:
    """Which league model and slate: ``envs.config.make_params`` keys."""

    league: str = ENV_DEFAULTS["league"]
    n_matches: int = ENV_DEFAULTS["n_matches"]
    pre_match_ticks: int = ENV_DEFAULTS["pre_match_ticks"]
    bankroll: float = ENV_DEFAULTS["bankroll"]


EnvConfig = dataclasses.make_dataclass(
    "EnvConfig",
    [
        (name, type(value), field(default=value))
        for name, value in ENV_DEFAULTS.items()
        if name not in (*MARKET_KEYS, "regime")
    ],
)
EnvConfig.__doc__ = "Environment options (``envs.config.ENV_DEFAULTS`` without the market)."


@dataclass
class AgentConfig:
    """The learner: ``jax_ppo`` or an SB3 algorithm, and its hyper-parameters.

    ``hyperparameters``: for ``jax_ppo`` fields of ``agents.jax_ppo.PPOConfig``; for SB3
    the algorithm's constructor arguments. ``max_seconds`` > 0 stops training at that
    wall-clock budget (the run records that it stopped early).
    """

    name: str = "jax_ppo"
    total_timesteps: int = 2_400_000
    num_envs: int = 128
    seed: int = 0
    max_seconds: float = 0.0
    hyperparameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class PolicyConfig:
    """The network, or a trained checkpoint to use instead of training."""

    hidden: int = 64
    initial_log_std: float = -1.0
    initial_action_bias: float = -0.5
    sb3_net_arch: list[int] = field(default_factory=lambda: [128, 128])
    checkpoint: str | None = None


@dataclass
class LoggerConfig:
    """Weights & Biases: offline by default (runs under ``out_dir/wandb``)."""

    mode: str = "offline"
    project: str = "tetra"
    entity: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class EvaluationConfig:
    """Held-out seeds (common random numbers), slates per seed, bootstrap size."""

    seeds: list[int] = field(default_factory=lambda: list(range(1000, 1020)))
    rounds: int = 10
    bootstrap: int = 2000
    baselines: list[str] = field(default_factory=lambda: list(BASELINE_NAMES))


@dataclass
class ExperimentConfig:
    """Everything one entry point needs (see the module docstring)."""

    market: MarketConfig = field(default_factory=MarketConfig)
    env: Any = field(default_factory=EnvConfig)
    regime: dict[str, Any] = field(default_factory=lambda: {"name": "calm"})
    agent: AgentConfig = field(default_factory=AgentConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    experiment_name: str = "default"
    out_dir: str = "outputs/${experiment_name}/${regime.name}-seed${agent.seed}"
    #: evaluate: train first when ``policy.checkpoint`` is null.
    train: bool = True
    #: stress: the regimes to run (default: all).
    regimes: list[str] = field(default_factory=lambda: list(REGIME_NAMES))
    #: export: the checkpoint directory and the ONNX file to write.
    checkpoint: str | None = None
    out: str | None = None


ConfigStore.instance().store(name="experiment_schema", node=ExperimentConfig)


def to_plain(config: Any) -> Any:
    """A resolved, JSON-safe copy of a (structured) config."""
    return OmegaConf.to_container(OmegaConf.create(config), resolve=True)


def regime_of(config: Any) -> Regime:
    """The configured ``Regime`` (unknown keys raise, naming them)."""
    return regime_from_config(dict(config.regime))


def env_kwargs(config: Any, regime: Regime | str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``envs.config.make_params`` / ``envs.make_vec``."""
    return {
        **dict(to_plain(config.market)),
        **dict(to_plain(config.env)),
        "regime": regime if regime is not None else regime_of(config),
    }


def ppo_config(config: Any) -> PPOConfig:
    """``PPOConfig`` from ``agent`` and ``policy`` (unknown hyper-parameters named)."""
    valid = {f.name for f in dataclasses.fields(PPOConfig)}
    hyper = dict(to_plain(config.agent.hyperparameters))
    unknown = sorted(set(hyper) - valid)
    if unknown:
        raise ValueError(
            f"agent.hyperparameters: unknown keys {unknown} for jax_ppo; valid: {sorted(valid)}"
        )
    ppo = PPOConfig(
        **{
            **hyper,
            "num_envs": int(config.agent.num_envs),
            "total_timesteps": int(config.agent.total_timesteps),
            "seed": int(config.agent.seed),
            "max_seconds": float(config.agent.max_seconds),
            "hidden": int(config.policy.hidden),
            "initial_log_std": float(config.policy.initial_log_std),
            "initial_action_bias": float(config.policy.initial_action_bias),
        }
    )
    ppo.validate()
    return ppo


_GROUP_SCHEMAS = {
    "market": MarketConfig,
    "env": EnvConfig,
    "agent": AgentConfig,
    "policy": PolicyConfig,
    "logger": LoggerConfig,
    "evaluation": EvaluationConfig,
}


def validate(config: Any) -> None:
    """Check keys, choices and ranges at the boundary; errors name the key and the choices."""
    for group, schema in _GROUP_SCHEMAS.items():
        valid = {f.name for f in dataclasses.fields(schema)}
        unknown = sorted(set(config[group]) - valid)
        if unknown:
            raise ValueError(f"{group}: unknown keys {unknown}; valid: {sorted(valid)}")
    if config.agent.name not in AGENT_NAMES:
        raise ValueError(
            f"agent.name: unknown algorithm {config.agent.name!r}; valid: {', '.join(AGENT_NAMES)}"
        )
    if config.logger.mode not in LOGGER_MODES:
        raise ValueError(f"logger.mode: {config.logger.mode!r}; valid: {', '.join(LOGGER_MODES)}")
    unknown = [name for name in config.evaluation.baselines if name not in BASELINE_NAMES]
    if unknown:
        raise ValueError(
            f"evaluation.baselines: unknown {unknown}; valid: {', '.join(BASELINE_NAMES)}"
        )
    bad_regimes = [name for name in config.regimes if name not in REGIME_NAMES]
    if bad_regimes:
        raise ValueError(f"regimes: unknown {bad_regimes}; valid: {', '.join(REGIME_NAMES)}")
    for name in ("rounds", "bootstrap"):
        if getattr(config.evaluation, name) < 1:
            raise ValueError(
                f"evaluation.{name}: expected ≥ 1, got {getattr(config.evaluation, name)}"
            )
    if not config.evaluation.seeds:
        raise ValueError("evaluation.seeds: expected at least one seed")
    for name in ("total_timesteps", "num_envs"):
        if getattr(config.agent, name) < 1:
            raise ValueError(f"agent.{name}: expected ≥ 1, got {getattr(config.agent, name)}")
    regime_of(config)
    if config.agent.name == "jax_ppo":
        ppo_config(config)

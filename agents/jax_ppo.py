"""PPO in pure JAX (flax + optax), PureJaxRL-style, over ``envs.functional``.

    init, update = make_train(config, env_params)
    runner = init(key)                 # networks, optimiser, environments
    runner, metrics = update(runner)   # one rollout of num_steps × num_envs, then PPO epochs

Both are pure and jittable; ``train(config, env_params, key)`` jits ``update`` and drives
it from Python (a progress line per ``log_every`` updates, an optional wall-clock budget);
``make_scanned_train`` gives the fully scanned ``train(key)`` of PureJaxRL. ``num_seeds`` >
1 vmaps everything over independent seeds.

Continuous actions: a Gaussian per selection (``policies.networks.MatchwiseActorCritic``);
the environment clips to [−1, 1] and projects onto the caps.

``factored=True`` (default) treats the slate's matches like agents with a shared policy
(IPPO with parameter sharing): the reward of match m is its own P&L over the tick
(``info["match_pnl"]``, which sums to the change of equity) divided by the equity before
it, the critic values each match (V = Σ_m V_m), and match m's actions are credited with
match m's advantage only. The other nine matches' outcomes are independent noise for
that credit, so this cuts the variance of the policy gradient roughly by the number of
matches. ``factored=False`` is plain PPO on the slate's reward (Δ log equity).

``credit`` chooses what match m's reward is (factored only):

- ``"realised"``: its P&L over the tick, as above — unbiased, but a bet's reward is the
  coin flip of its outcome ~100 ticks later (the outcome's variance swamps a 2 % edge).
- ``"expected"`` (privileged, training only): the change of the expected log-utility of
  match m's open position that this tick's fills cause, under the simulator's true
  probabilities at the time of the fill (``expected_fill_utility``). The outcome noise
  and the martingale moves of the position's value are left out, which keeps the
  expectation of the policy gradient (for the log-utility objective, up to the coupling
  of matches through the bankroll and of the 1X2 and O/U markets) and removes most of its
  variance. The policy still sees only its observation; the oracle enters the
  reward the simulator hands out, like an asymmetric actor–critic's privileged critic
  (Pinto et al. 2017). Evaluation always scores realised outcomes.

``cap_price`` (λ ≥ 0, default 0) charges every fill λ × stake / equity in its match's
reward (``cap_charge``): the shadow price of the slate-wide Hard-Cap, which the
per-match credit cannot see (a stake in match m now is capacity match k cannot use
later; exposure is freed only at full time). It is the Lagrangian relaxation of that
shared constraint, so a match bets only where its edge beats what the capacity is worth
elsewhere; λ ramps up from 0 over the first ``cap_price_warmup`` of the updates so the
policy first learns where the value is (at full price from the start it learns to
abstain). Evaluation never sees the charge.

Observations are normalised by running statistics kept in the runner
(``ObservationNormaliser``), updated from every rollout and saved with the policy.
Learning rewards (log-equity units per tick) are multiplied by ``reward_scale`` for the
value function's sake; the reported returns (Δ log equity, realised) are unscaled.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.training.train_state import TrainState

from envs import functional
from envs.functional import EnvParams
from policies.networks import MatchwiseActorCritic, NetworkConfig, ObservationNormaliser


@dataclass(frozen=True)
class PPOConfig:
    """Every hyper-parameter of the JAX PPO (CleanRL-style: all visible)."""

    num_envs: int = 128
    num_steps: int = 119
    total_timesteps: int = 2_400_000
    update_epochs: int = 4
    num_minibatches: int = 8
    learning_rate: float = 1e-3
    anneal_lr: bool = True
    gamma: float = 1.0
    gae_lambda: float = 1.0
    clip_eps: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    reward_scale: float = 30.0
    hidden: int = 64
    initial_log_std: float = -1.0
    initial_action_bias: float = -0.5
    #: Exploration noise drawn once per episode ("episode", like SB3's gSDE with one
    #: sample per episode) or every tick ("step"). Per-episode noise suits this market:
    #: exposure only grows, so independent per-tick noise ratchets every stake to its cap.
    noise: str = "episode"
    factored: bool = True
    #: Match m's reward: ``"realised"`` P&L or ``"expected"`` (oracle) log-utility of fills.
    credit: str = "expected"
    #: Shadow price of the slate-wide Hard-Cap (log-equity per unit of bankroll staked):
    #: every fill is charged ``cap_price × stake / equity`` in its match's reward.
    cap_price: float = 0.0
    #: Fraction of the updates over which the cap price ramps up linearly from 0 (a
    #: curriculum: the policy first learns where the value is, then to be selective).
    cap_price_warmup: float = 0.5
    num_seeds: int = 1
    seed: int = 0
    max_seconds: float = 0.0  # wall-clock budget of ``train`` (0 = none)
    log_every: int = 10

    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // (self.num_envs * self.num_steps))

    def validate(self) -> None:
        """Reject impossible settings, naming the field."""
        for name in ("num_envs", "num_steps", "total_timesteps", "update_epochs", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"agent.{name}: expected ≥ 1, got {getattr(self, name)}")
        if self.num_minibatches < 1 or (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ValueError(
                f"agent.num_minibatches: must divide num_envs × num_steps = "
                f"{self.num_envs * self.num_steps}, got {self.num_minibatches}"
            )
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"agent.{name}: expected in [0, 1], got {getattr(self, name)}")
        if self.noise not in ("episode", "step"):
            raise ValueError(f"agent.noise: expected 'episode' or 'step', got {self.noise!r}")
        if self.credit not in ("realised", "expected"):
            raise ValueError(
                f"agent.credit: expected 'realised' or 'expected', got {self.credit!r}"
            )
        if self.credit == "expected" and not self.factored:
            raise ValueError(
                "agent.credit: 'expected' needs agent.factored = true (or credit = 'realised')"
            )
        if not 0.0 <= self.cap_price < 10.0:
            raise ValueError(f"agent.cap_price: expected in [0, 10), got {self.cap_price}")
        if not 0.0 <= self.cap_price_warmup <= 1.0:
            raise ValueError(
                f"agent.cap_price_warmup: expected in [0, 1], got {self.cap_price_warmup}"
            )
        if self.learning_rate <= 0 or self.clip_eps <= 0:
            raise ValueError("agent.learning_rate and agent.clip_eps must be > 0")


def network_config(config: PPOConfig, env_params: EnvParams) -> NetworkConfig:
    """The network's shapes for this environment layout."""
    return NetworkConfig(
        n_matches=env_params.market.n_matches,
        match_width=len(functional.MATCH_COLUMNS),
        global_width=len(functional.GLOBAL_COLUMNS),
        hidden=config.hidden,
        initial_log_std=config.initial_log_std,
        initial_action_bias=config.initial_action_bias,
    )


def _market_log_utility(stakes: Any, payout: Any, probability: Any, bankroll: Any) -> Any:
    """E[log(1 + P&L / bankroll)] of one market's position [..., K] over its K outcomes."""
    pnl = payout - stakes.sum(axis=-1, keepdims=True)
    growth = jnp.maximum(1.0 + pnl / bankroll[..., None], 1e-6)
    return jnp.sum(probability * jnp.log(growth), axis=-1)


def expected_fill_utility(market: Any, fills: Any, equity: Any) -> Any:
    """Per match [N, M]: how much this tick's ``fills`` [N, M, 5] (currency) raise the
    expected log-utility of the match's open position, in log-equity units.

    ``market``: the batch's market states *before* the tick (their open stakes, payouts
    and true probabilities; fills are at ``market.odds``); ``equity`` [N]: the equity
    before the tick. Each market (1X2, O/U) is valued on its own outcomes with the
    simulator's true probabilities: Σ_k p_k log(1 + P&L_k / equity), after minus before.
    """
    bankroll = jnp.maximum(equity, 1e-6)[:, None]
    probability = market.true_probability
    stakes_before, payout_before = market.our_stakes, market.our_payout
    stakes_after = stakes_before + fills
    payout_after = payout_before + fills * market.odds

    def utility(stakes: Any, payout: Any) -> Any:
        return sum(
            _market_log_utility(
                stakes[..., part], payout[..., part], probability[..., part], bankroll
            )
            for part in (slice(0, 3), slice(3, 5))
        )

    return utility(stakes_after, payout_after) - utility(stakes_before, payout_before)


def cap_charge(fills: Any, equity: Any, cap_price: Any, factored: bool) -> Any:
    """The Hard-Cap's shadow price charged for this tick's ``fills`` [N, M, 5] (currency):
    ``cap_price × stake / equity`` per match [N, M] (summed to [N, 1] if not ``factored``).

    Why: the Hard-Cap is one budget for the whole slate (exposure is freed only at full
    time), so a stake in match m now is capacity that match k cannot use later. The
    per-match credit does not see that coupling; this is its Lagrangian relaxation (dual
    decomposition over matches): with the right price a match bets only where the edge
    beats what the capacity is worth elsewhere.
    """
    charge = cap_price * fills.sum(axis=-1) / jnp.maximum(equity, 1e-6)[:, None]
    return charge if factored else charge.sum(axis=-1, keepdims=True)


class Transition(NamedTuple):
    done: jax.Array
    action: jax.Array
    value: jax.Array
    reward: jax.Array
    log_prob: jax.Array
    obs: jax.Array


@struct.dataclass
class Runner:
    """Everything the training loop carries between updates."""

    train_state: TrainState
    normaliser: ObservationNormaliser
    env_state: Any
    obs: Any
    episode_return: Any
    noise: Any
    key: Any
    update_index: Any


def _log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array, matches: int) -> jax.Array:
    """Log density per match [..., M] (its 5 selections' Gaussians)."""
    z = (action - mean) / jnp.exp(log_std)
    per_selection = -0.5 * z**2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi)
    return per_selection.reshape(*per_selection.shape[:-1], matches, -1).sum(axis=-1)


def _entropy(log_std: jax.Array) -> jax.Array:
    return jnp.sum(log_std + 0.5 * (1.0 + jnp.log(2.0 * jnp.pi)), axis=-1)


def make_train(
    config: PPOConfig, env_params: EnvParams
) -> tuple[Callable[[jax.Array], Runner], Callable[[Runner], tuple[Runner, dict[str, Any]]]]:
    """``(init, update)`` for one seed; see the module docstring."""
    config.validate()
    network = MatchwiseActorCritic(network_config(config, env_params))
    obs_size = functional.observation_size(env_params)
    batch_size = config.num_envs * config.num_steps
    minibatch_size = batch_size // config.num_minibatches
    matches = env_params.market.n_matches
    action_size = matches * 5

    def schedule(count: Any) -> Any:
        updates_done = count // (config.num_minibatches * config.update_epochs)
        fraction = 1.0 - updates_done / config.num_updates
        return config.learning_rate * jnp.maximum(fraction, 0.05)

    optimiser = optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm),
        optax.adam(schedule if config.anneal_lr else config.learning_rate, eps=1e-5),
    )

    def init(key: jax.Array) -> Runner:
        key, key_net, key_env, key_noise = jax.random.split(key, 4)
        network_params = network.init(key_net, jnp.zeros((obs_size,), jnp.float32))
        train_state = TrainState.create(apply_fn=network.apply, params=network_params, tx=optimiser)
        obs, env_state = jax.vmap(functional.reset, in_axes=(0, None))(
            jax.random.split(key_env, config.num_envs), env_params
        )
        normaliser = ObservationNormaliser.create(obs_size).update(obs)
        return Runner(
            train_state=train_state,
            normaliser=normaliser,
            env_state=env_state,
            obs=obs,
            episode_return=jnp.zeros(config.num_envs),
            noise=jax.random.normal(key_noise, (config.num_envs, action_size)),
            key=key,
            update_index=jnp.int32(0),
        )

    def rollout_step(carry: tuple[Runner, Any], _: Any) -> tuple[tuple[Runner, Any], Any]:
        runner, finished = carry
        key, key_action, key_step = jax.random.split(runner.key, 3)
        mean, log_std, value = network.apply(
            runner.train_state.params, runner.normaliser.normalise(runner.obs)
        )
        fresh = jax.random.normal(key_action, mean.shape)
        noise = runner.noise if config.noise == "episode" else fresh
        action = mean + jnp.exp(log_std) * noise
        log_prob = _log_prob(mean, log_std, action, matches)
        obs, env_state, reward, done, info = functional.step_autoreset_batch(
            key_step, runner.env_state, jnp.clip(action, -1.0, 1.0), env_params
        )
        previous_equity = info["equity"] - info["match_pnl"].sum(axis=-1)
        if config.credit == "expected":
            learn_reward = expected_fill_utility(
                runner.env_state.market, info["executed_stakes"], previous_equity
            )
        elif config.factored:
            learn_reward = info["match_pnl"] / jnp.maximum(previous_equity, 1e-6)[:, None]
        else:
            learn_reward = reward[:, None]
            value = value.sum(axis=-1, keepdims=True)
            log_prob = log_prob.sum(axis=-1, keepdims=True)
        if config.cap_price:
            warmup = config.cap_price_warmup * config.num_updates
            ramp = jnp.minimum(1.0, runner.update_index / warmup) if warmup > 0 else 1.0
            learn_reward = learn_reward - cap_charge(
                info["executed_stakes"], previous_equity, config.cap_price * ramp, config.factored
            )
        episode_return = runner.episode_return + reward
        returns_sum, returns_count = finished
        finished = (
            returns_sum + jnp.sum(jnp.where(done, episode_return, 0.0)),
            returns_count + jnp.sum(done),
        )
        transition = Transition(
            done=done,
            action=action,
            value=value,
            reward=learn_reward * config.reward_scale,
            log_prob=log_prob,
            obs=runner.obs,
        )
        runner = dataclasses.replace(
            runner,
            env_state=env_state,
            obs=obs,
            episode_return=jnp.where(done, 0.0, episode_return),
            noise=jnp.where(done[:, None], fresh, runner.noise),
            key=key,
        )
        return (runner, finished), transition

    def advantages(transitions: Transition, last_value: jax.Array) -> tuple[Any, Any]:
        def backward(carry: tuple[Any, Any], t: Transition) -> tuple[tuple[Any, Any], Any]:
            gae, next_value = carry
            not_done = 1.0 - t.done[:, None]
            delta = t.reward + config.gamma * next_value * not_done - t.value
            gae = delta + config.gamma * config.gae_lambda * not_done * gae
            return (gae, t.value), gae

        _, adv = jax.lax.scan(
            backward, (jnp.zeros_like(last_value), last_value), transitions, reverse=True
        )
        return adv, adv + transitions.value

    def loss_fn(
        network_params: Any, batch: tuple[Transition, Any, Any], normaliser: ObservationNormaliser
    ) -> tuple[Any, dict[str, Any]]:
        transitions, adv, targets = batch
        mean, log_std, value = network.apply(network_params, normaliser.normalise(transitions.obs))
        log_prob = _log_prob(mean, log_std, transitions.action, matches)
        if not config.factored:
            value = value.sum(axis=-1, keepdims=True)
            log_prob = log_prob.sum(axis=-1, keepdims=True)
        value_clipped = transitions.value + jnp.clip(
            value - transitions.value, -config.clip_eps, config.clip_eps
        )
        value_loss = (
            0.5 * jnp.maximum((value - targets) ** 2, (value_clipped - targets) ** 2).mean()
        )
        ratio = jnp.exp(log_prob - transitions.log_prob)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        actor_loss = -jnp.minimum(
            ratio * adv, jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps) * adv
        ).mean()
        entropy = _entropy(log_std).mean()
        total = actor_loss + config.vf_coef * value_loss - config.ent_coef * entropy
        return total, {"value_loss": value_loss, "actor_loss": actor_loss, "entropy": entropy}

    def update(runner: Runner) -> tuple[Runner, dict[str, Any]]:
        (runner, finished), transitions = jax.lax.scan(
            rollout_step, (runner, (jnp.float32(0.0), jnp.int32(0))), None, config.num_steps
        )
        _, _, last_value = network.apply(
            runner.train_state.params, runner.normaliser.normalise(runner.obs)
        )
        if not config.factored:
            last_value = last_value.sum(axis=-1, keepdims=True)
        adv, targets = advantages(transitions, last_value)
        normaliser = runner.normaliser

        def epoch(carry: tuple[TrainState, Any], _: Any) -> tuple[tuple[TrainState, Any], Any]:
            train_state, key = carry
            key, key_perm = jax.random.split(key)
            permutation = jax.random.permutation(key_perm, batch_size)
            data = jax.tree.map(
                lambda x: x.reshape(batch_size, *x.shape[2:])[permutation].reshape(
                    config.num_minibatches, minibatch_size, *x.shape[2:]
                ),
                (transitions, adv, targets),
            )

            def minibatch(state: TrainState, batch: Any) -> tuple[TrainState, Any]:
                grads, aux = jax.grad(loss_fn, has_aux=True)(state.params, batch, normaliser)
                return state.apply_gradients(grads=grads), aux

            train_state, aux = jax.lax.scan(minibatch, train_state, data)
            return (train_state, key), aux

        key, key_epochs = jax.random.split(runner.key)
        (train_state, _), aux = jax.lax.scan(
            epoch, (runner.train_state, key_epochs), None, config.update_epochs
        )
        returns_sum, returns_count = finished
        metrics = {
            "episode_log_growth": returns_sum / jnp.maximum(returns_count, 1),
            "episodes": returns_count,
            **{name: value.mean() for name, value in aux.items()},
        }
        runner = dataclasses.replace(
            runner,
            train_state=train_state,
            normaliser=normaliser.update(transitions.obs),
            key=key,
            update_index=runner.update_index + 1,
        )
        return runner, metrics

    return init, update


def make_scanned_train(config: PPOConfig, env_params: EnvParams) -> Callable[[jax.Array], Any]:
    """PureJaxRL's ``train(key)``: every update in one ``lax.scan`` (jit it)."""
    init, update = make_train(config, env_params)

    def train(key: jax.Array) -> tuple[Runner, dict[str, Any]]:
        return jax.lax.scan(lambda r, _: update(r), init(key), None, config.num_updates)

    return train


@dataclass
class TrainResult:
    """The trained runner (seed-batched when ``num_seeds`` > 1) and the learning curve."""

    runner: Runner
    history: list[dict[str, Any]]
    seconds: float
    env_steps: int
    stopped_early: bool


def train(
    config: PPOConfig,
    env_params: EnvParams,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train for ``num_updates`` (or until ``max_seconds``), vmapped over ``num_seeds``."""
    init, update = make_train(config, env_params)
    keys = jax.random.split(jax.random.PRNGKey(config.seed), config.num_seeds)
    runner = jax.jit(jax.vmap(init))(keys)
    update_jit = jax.jit(jax.vmap(update))
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    stopped_early = False
    steps_per_update = config.num_envs * config.num_steps * config.num_seeds
    for index in range(config.num_updates):
        runner, metrics = update_jit(runner)
        row: dict[str, Any] = {
            name: float(np.mean(np.asarray(value))) for name, value in metrics.items()
        }
        row["log_growth_per_seed"] = np.asarray(metrics["episode_log_growth"]).tolist()
        row["update"] = index + 1
        row["env_steps"] = (index + 1) * steps_per_update
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        if progress is not None and ((index + 1) % config.log_every == 0 or index == 0):
            progress(row)
        if config.max_seconds and row["seconds"] > config.max_seconds:
            stopped_early = index + 1 < config.num_updates
            break
    jax.block_until_ready(runner)
    return TrainResult(
        runner=runner,
        history=history,
        seconds=time.perf_counter() - start,
        env_steps=len(history) * steps_per_update,
        stopped_early=stopped_early,
    )


def best_seed(history: list[dict[str, Any]], fraction: float = 0.1) -> int:
    """The seed with the highest mean training log-growth over the last ``fraction`` of
    updates (training episodes only: evaluation seeds play no part)."""
    tail = history[-max(1, int(len(history) * fraction)) :]
    late = np.mean([row["log_growth_per_seed"] for row in tail], axis=0)
    return int(np.argmax(late))


def seed_slice(runner: Runner, index: int) -> Runner:
    """One seed's runner out of a seed-batched one."""
    return jax.tree.map(lambda x: x[index], runner)


def network_for(config: PPOConfig, env_params: EnvParams) -> nn.Module:
    return MatchwiseActorCritic(network_config(config, env_params))

"""LARS: layer-wise adaptive rate scaling (You et al., 2017).

The optimizer SimCLR, BYOL and friends use for large-batch pretraining. It is
SGD with momentum in which each weight matrix gets its own learning rate,
scaled by the *trust ratio* `eta * ||w|| / ||g||`, so that the size of an
update is proportional to the size of the weights it changes, whatever the
scale of the gradient.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_ssl")
class LARS(keras.optimizers.Optimizer):
    """Layer-wise Adaptive Rate Scaling, with coupled L2 weight decay.

    The update for a variable `w` with gradient `g`, as in SimCLR's
    `lars_optimizer.py` ("classic momentum"):

    ```python
    if decay_applies(w):
        g = g + weight_decay * w
    trust = 1.0
    if adaptation_applies(w) and norm(w) > 0 and norm(g) > 0:
        trust = eta * norm(w) / norm(g)
    v = momentum * v + learning_rate * trust * g
    update = momentum * v + learning_rate * trust * g if nesterov else v
    w = w - update
    ```

    where `norm` is the L2 norm of the whole variable.

    Which variables are concerned:

    * Variables of rank <= 1 (biases, BatchNorm / LayerNorm scales and
      offsets) never receive weight decay nor layer adaptation: they are
      updated by plain momentum SGD. This is what SimCLR achieves by
      excluding the names `"batch_normalization"` and `"bias"`, expressed by
      rank because variable names differ between layers and backends.
    * `exclude_from_weight_decay(var_list=..., var_names=...)`, inherited
      from `keras.optimizers.Optimizer`, excludes further variables from
      weight decay. As in Keras, `var_names` are regular expressions searched
      in `variable.name` (e.g. `"kernel"`, without the layer name).
    * `exclude_from_layer_adaptation`: regular expressions searched in
      `variable.path` (e.g. `"projection_head/dense/kernel"`, so layer names
      can be matched). When it is `None`, layer adaptation follows the weight
      decay exclusions, as in SimCLR.

    The weight decay here is the coupled L2 term of the original LARS, added
    to the gradient *before* the trust ratio is computed. The base class's own
    decoupled weight decay (its `weight_decay` attribute) stays `None`, so it
    is never applied on top; the LARS coefficient is kept in
    `weight_decay_rate` and reported as `weight_decay` by `get_config()`.

    Example:

    ```python
    import keras
    from keras_ssl.optimizers import LARS, warmup_cosine_schedule

    schedule = warmup_cosine_schedule(
        base_learning_rate=0.3, total_steps=1000, warmup_steps=100
    )
    model = keras.Sequential([keras.layers.Dense(10)])
    model.compile(optimizer=LARS(schedule, weight_decay=1e-6), loss="mse")
    ```

    Args:
        learning_rate: A float, a
            `keras.optimizers.schedules.LearningRateSchedule`, or a callable
            taking no arguments and returning the learning rate.
        momentum: Momentum coefficient, in `[0, 1)`.
        weight_decay: Coefficient of the coupled L2 weight decay, `>= 0`.
        eta: Trust coefficient of the layer-wise adaptation, `> 0`.
        nesterov: Whether to use Nesterov momentum.
        exclude_from_layer_adaptation: Regular expressions; variables whose
            `path` matches one of them get a trust ratio of 1. `None` reuses
            the weight decay exclusions.
        clipnorm: If set, each gradient is clipped to this L2 norm.
        clipvalue: If set, gradients are clipped to `[-clipvalue, clipvalue]`.
        global_clipnorm: If set, all gradients are clipped together to this
            global L2 norm.
        use_ema: Whether to keep an exponential moving average of the weights.
        ema_momentum: Momentum of that moving average.
        ema_overwrite_frequency: Every how many steps the weights are
            overwritten by their moving average (`None`: only at the end of
            `fit`).
        loss_scale_factor: If set, the loss is multiplied by it and the
            gradients divided by it (mixed precision).
        gradient_accumulation_steps: If set (`>= 2`), gradients are averaged
            over this many steps before each update.
        name: Name of the optimizer, used for its variables.
        **kwargs: Other arguments of `keras.optimizers.Optimizer`.
    """

    def __init__(
        self,
        learning_rate: float | Any = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        eta: float = 0.001,
        nesterov: bool = False,
        exclude_from_layer_adaptation: Sequence[str] | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            # LARS applies its own (coupled) decay in `update_step`; the base
            # class must not add its decoupled one.
            weight_decay=None,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1). Got {momentum}.")
        if weight_decay is None or weight_decay < 0.0:
            raise ValueError(
                f"`weight_decay` must be a float >= 0. Got {weight_decay}."
            )
        if eta <= 0.0:
            raise ValueError(f"`eta` must be > 0. Got {eta}.")
        if isinstance(exclude_from_layer_adaptation, str):
            raise TypeError(
                "`exclude_from_layer_adaptation` must be a list of patterns, "
                f"not a string. Got {exclude_from_layer_adaptation!r}."
            )
        self.momentum = float(momentum)
        self.weight_decay_rate = float(weight_decay)
        self.eta = float(eta)
        self.nesterov = bool(nesterov)
        self.exclude_from_layer_adaptation = (
            None
            if exclude_from_layer_adaptation is None
            else list(exclude_from_layer_adaptation)
        )

    def build(self, variables: Sequence[keras.Variable]) -> None:
        """Creates the momentum slots and fixes which rules apply where.

        Args:
            variables: The model variables the optimizer will update.
        """
        if self.built:
            return
        super().build(variables)
        self.momentums = (
            self.add_optimizer_variables(variables, "momentum")
            if self.momentum > 0.0
            else []
        )
        # Python-level decisions, taken once so that `update_step` traces to
        # the same graph on every backend: {id: (decay, adaptation)}.
        self._lars_rules = {
            self._var_key(v): (self._decays(v), self._adapts(v))
            for v in variables
        }

    def _decays(self, variable: keras.Variable) -> bool:
        return (
            self.weight_decay_rate > 0.0
            and len(variable.shape) > 1
            and self._use_weight_decay(variable)
        )

    def _adapts(self, variable: keras.Variable) -> bool:
        if len(variable.shape) <= 1:
            return False
        if self.exclude_from_layer_adaptation is None:
            return self._use_weight_decay(variable)
        return not any(
            re.search(pattern, variable.path)
            for pattern in self.exclude_from_layer_adaptation
        )

    def update_step(
        self, gradient: Any, variable: keras.Variable, learning_rate: Any
    ) -> None:
        """Applies one LARS update to `variable`.

        Args:
            gradient: Gradient of the loss with respect to `variable`.
            variable: The model variable to update.
            learning_rate: The current learning rate.
        """
        dtype = variable.dtype
        learning_rate = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        decays, adapts = self._lars_rules[self._var_key(variable)]

        if decays:
            weight_decay = ops.cast(self.weight_decay_rate, dtype)
            gradient = ops.add(gradient, ops.multiply(weight_decay, variable))
        if adapts:
            w_norm = ops.sqrt(ops.sum(ops.square(variable)))
            g_norm = ops.sqrt(ops.sum(ops.square(gradient)))
            both_positive = ops.logical_and(
                ops.greater(w_norm, 0.0), ops.greater(g_norm, 0.0)
            )
            # Divide by a safe denominator so that the unused branch of the
            # `where` holds no inf / nan (which would poison its gradient).
            safe_g_norm = ops.where(both_positive, g_norm, 1.0)
            trust_ratio = ops.where(
                both_positive,
                ops.divide(ops.multiply(self.eta, w_norm), safe_g_norm),
                1.0,
            )
            learning_rate = ops.multiply(
                learning_rate, ops.cast(trust_ratio, dtype)
            )

        scaled_gradient = ops.multiply(learning_rate, gradient)
        if not self.momentums:
            self.assign_sub(variable, scaled_gradient)
            return
        velocity = self.momentums[self._get_variable_index(variable)]
        momentum = ops.cast(self.momentum, dtype)
        self.assign(
            velocity,
            ops.add(ops.multiply(momentum, velocity), scaled_gradient),
        )
        if self.nesterov:
            self.assign_sub(
                variable,
                ops.add(ops.multiply(momentum, velocity), scaled_gradient),
            )
        else:
            self.assign_sub(variable, velocity)

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments, for `LARS.from_config`."""
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "weight_decay": self.weight_decay_rate,
                "eta": self.eta,
                "nesterov": self.nesterov,
                "exclude_from_layer_adaptation": (
                    None
                    if self.exclude_from_layer_adaptation is None
                    else list(self.exclude_from_layer_adaptation)
                ),
            }
        )
        return config

"""Learning-rate schedules used by self-supervised pretraining recipes."""

from __future__ import annotations

import keras


def warmup_cosine_schedule(
    base_learning_rate: float,
    total_steps: int,
    warmup_steps: int,
    alpha: float = 0.0,
) -> keras.optimizers.schedules.CosineDecay:
    """Linear warmup from 0 to `base_learning_rate`, then cosine decay.

    The SimCLR / BYOL / MoCo v3 schedule, built from Keras's own
    `CosineDecay`. That class counts its `decay_steps` *after* the warmup, so
    the decay is given `total_steps - warmup_steps` steps here and the
    schedule reaches its floor `alpha * base_learning_rate` exactly at
    `total_steps` (and stays there afterwards).

    Example:

    ```python
    from keras_ssl.optimizers import LARS, warmup_cosine_schedule

    schedule = warmup_cosine_schedule(0.3 * 512 / 256, 10_000, 1_000)
    float(schedule(0)), float(schedule(1_000)), float(schedule(10_000))
    # (0.0, 0.6, 0.0)
    optimizer = LARS(learning_rate=schedule)
    ```

    Args:
        base_learning_rate: Peak learning rate, reached at `warmup_steps`.
        total_steps: Length of the whole schedule, warmup included, in
            optimizer steps.
        warmup_steps: Length of the linear warmup, `0 <= warmup_steps <
            total_steps`. With `0` the schedule is a plain cosine decay.
        alpha: Final learning rate, as a fraction of `base_learning_rate`.

    Returns:
        A `keras.optimizers.schedules.CosineDecay`, serializable like any
        Keras schedule.
    """
    if base_learning_rate < 0.0:
        raise ValueError(
            f"`base_learning_rate` must be >= 0. Got {base_learning_rate}."
        )
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(
            "Expected 0 <= warmup_steps < total_steps. Got "
            f"warmup_steps={warmup_steps}, total_steps={total_steps}."
        )
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=float(base_learning_rate),
            decay_steps=int(total_steps),
            alpha=float(alpha),
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=int(total_steps - warmup_steps),
        alpha=float(alpha),
        warmup_target=float(base_learning_rate),
        warmup_steps=int(warmup_steps),
    )

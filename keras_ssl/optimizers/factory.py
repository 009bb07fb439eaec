"""The one optimizer factory of the recipes: a name, a peak learning rate and
a warmup + cosine schedule over the run's optimizer steps."""

import keras

from keras_ssl.optimizers.lars import LARS
from keras_ssl.optimizers.schedules import warmup_cosine_schedule

OPTIMIZERS = ("adamw", "lars", "sgd", "adafactor")


def make_optimizer(name, learning_rate, total_steps, warmup_steps=0,
                   weight_decay=0.0, beta_2=0.999, epsilon=1e-7, clipnorm=None,
                   gradient_accumulation_steps=1):
    """An optimizer whose learning rate warms up linearly for `warmup_steps`
    to `learning_rate`, then follows a cosine to 0 at `total_steps`.

    Args:
        name: `"adamw"`, `"lars"` (SimCLR, BYOL), `"sgd"` (momentum 0.9,
            MoCo) or `"adafactor"` (T5).
        learning_rate: the peak learning rate.
        total_steps: optimizer steps of the whole run.
        warmup_steps: steps of the linear warmup (clipped below
            `total_steps`).
        weight_decay: decoupled weight decay (AdamW, SGD, LARS).
        beta_2, epsilon: AdamW's.
        clipnorm: clip each gradient to this norm (AdamW), or None.
        gradient_accumulation_steps: batches summed per update (AdamW,
            Adafactor); 1 turns it off.

    Example:

    ```python
    from keras_ssl.optimizers import make_optimizer
    optimizer = make_optimizer("lars", 4.8, total_steps=31_200, warmup_steps=3_120,
                               weight_decay=1e-6)
    ```
    """
    if name not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}"
        )
    total = max(1, int(total_steps))
    warmup = max(0, min(total - 1, int(warmup_steps)))
    schedule = warmup_cosine_schedule(learning_rate, total, warmup)
    accumulation = int(gradient_accumulation_steps)
    accumulation = accumulation if accumulation > 1 else None
    if name == "lars":
        return LARS(schedule, weight_decay=weight_decay)
    if name == "sgd":
        return keras.optimizers.SGD(
            schedule, momentum=0.9, weight_decay=weight_decay or None
        )
    if name == "adafactor":
        return keras.optimizers.Adafactor(
            schedule, gradient_accumulation_steps=accumulation
        )
    return keras.optimizers.AdamW(
        schedule, weight_decay=weight_decay, beta_2=beta_2, epsilon=epsilon,
        clipnorm=clipnorm, gradient_accumulation_steps=accumulation,
    )

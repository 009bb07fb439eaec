"""DINO's self-distillation objective: cross-entropy to a centred, sharpened teacher.

Pure `keras.ops` functions, the same on every backend:

- `dino_loss`: the cross-entropy between the teacher's and the student's
  output distributions over all pairs of different views;
- `update_center`: the EMA of the teacher's batch-mean output (centering);
- `teacher_temperature_schedule`: the linear warmup of the teacher's
  temperature (sharpening);
- `teacher_entropy`: the mean entropy of the teacher's distribution, DINO's
  collapse monitor (with the teacher–student KL, `dino_loss − entropy`).

"Both centering and sharpening are needed to avoid collapse: centering
prevents one dimension to dominate but encourages collapse to the uniform
distribution, while the sharpening has the opposite effect." (Caron et al.,
2021, section 3.1.)
"""

import numbers

from keras import ops


def _as_list(logits):
    if isinstance(logits, (tuple, list)):
        return [ops.cast(x, "float32") for x in logits]
    return [ops.cast(logits, "float32")]


def _check_temperature(value, name):
    if isinstance(value, numbers.Number) and not value > 0:
        raise ValueError(f"`{name}` must be positive, got {value}.")


def teacher_probabilities(teacher_logits, center, teacher_temp):
    """`softmax((t − c) / τ_t)` without gradient: the centred, sharpened teacher.

    Args:
        teacher_logits: a tensor `(B, K)` or a list of them (one per view).
        center: the center `c`, shape `(K,)`.
        teacher_temp: the teacher temperature τ_t (float or scalar tensor).

    Returns:
        A list of float32 tensors `(B, K)`, one per teacher view.
    """
    _check_temperature(teacher_temp, "teacher_temp")
    center = ops.stop_gradient(ops.cast(center, "float32"))
    temp = ops.cast(teacher_temp, "float32")
    return [
        ops.stop_gradient(ops.softmax((t - center) / temp, axis=-1))
        for t in _as_list(teacher_logits)
    ]


def dino_loss(
    student_logits_list, teacher_logits_list, center, student_temp, teacher_temp
):
    """DINO's cross-entropy H(P_t, P_s) over all pairs of different views.

    "We minimize: min_θs Σ_{x ∈ {x1g, x2g}} Σ_{x' ∈ V, x' ≠ x} H(Pt(x), Ps(x'))"
    (Caron et al., 2021, eq. 3), with `Ps = softmax(gs / τs)` and
    `Pt = softmax((gt − C) / τt)`. As in the reference code, each pair's
    cross-entropy is averaged over the batch, then the pairs are averaged.

    Pairing: teacher view `i` corresponds to student view `i` (the same global
    crop), so the student list must start with the global crops in the order
    of the teacher list, followed by the local crops. Pair `(i, i)` is skipped.

    Args:
        student_logits_list: list of `V` student outputs `(B, K)`: the global
            crops first, then the local crops.
        teacher_logits_list: list of `G ≤ V` teacher outputs `(B, K)` of the
            global crops (no gradient flows into them).
        center: the center `C`, shape `(K,)`.
        student_temp: student temperature τs > 0 (paper: 0.1).
        teacher_temp: teacher temperature τt > 0 (paper: 0.04 → 0.07); a
            float or a scalar tensor (e.g. a scheduled variable).

    Returns:
        The mean cross-entropy, a float32 scalar.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> s = [rng.normal(size=(4, 8)).astype("float32") for _ in range(3)]
    >>> t = [rng.normal(size=(4, 8)).astype("float32") for _ in range(2)]
    >>> float(dino_loss(s, t, np.zeros(8, "float32"), 0.1, 0.04)) > 0
    True
    """
    _check_temperature(student_temp, "student_temp")
    student = _as_list(student_logits_list)
    teacher_probs = teacher_probabilities(teacher_logits_list, center, teacher_temp)
    if len(teacher_probs) > len(student) or len(student) < 2:
        raise ValueError(
            "dino_loss needs at least 2 student views and no more teacher "
            f"views than student views; got {len(student)} student and "
            f"{len(teacher_probs)} teacher views."
        )
    log_student = [
        ops.log_softmax(s / ops.cast(student_temp, "float32"), axis=-1)
        for s in student
    ]
    total, num_terms = 0.0, 0
    for i, q in enumerate(teacher_probs):
        for v, log_p in enumerate(log_student):
            if v == i:
                continue  # the teacher and the student see the same crop
            total = total + ops.mean(ops.sum(-q * log_p, axis=-1))
            num_terms += 1
    return total / num_terms


def update_center(center, teacher_logits_list, momentum=0.9):
    """The new center: `m·C + (1 − m)·mean of the teacher outputs over the batch`.

    "The center c is updated with an exponential moving average [...]:
    c ← m c + (1 − m) (1/B) Σ_i gθt(x_i)" (Caron et al., 2021, eq. 4); the
    mean runs over all teacher outputs of the batch (both global crops).

    Args:
        center: the current center `(K,)`.
        teacher_logits_list: a teacher output `(B, K)` or a list of them.
        momentum: center momentum m in [0, 1] (paper: 0.9).

    Returns:
        The new center, float32 `(K,)`, without gradient (assign it).
    """
    if isinstance(momentum, numbers.Number) and not 0.0 <= momentum <= 1.0:
        raise ValueError(f"center `momentum` must be in [0, 1], got {momentum}.")
    teacher = ops.concatenate(_as_list(teacher_logits_list), axis=0)
    batch_center = ops.mean(ops.stop_gradient(teacher), axis=0)
    center = ops.stop_gradient(ops.cast(center, "float32"))
    return momentum * center + (1.0 - momentum) * batch_center


def teacher_temperature_schedule(step, warmup_steps, start=0.04, end=0.07):
    """Linear warmup of the teacher temperature from `start` to `end`, then `end`.

    The paper warms τt up linearly from 0.04 to 0.07 during the first 30
    epochs; here the schedule runs on optimizer steps. `step` may be a
    tensor (the optimizer's iteration counter) so that it runs in the jitted
    step; `warmup_steps=0` gives `end` from the start.
    """
    _check_temperature(start, "start")
    _check_temperature(end, "end")
    if warmup_steps < 0:
        raise ValueError(f"`warmup_steps` must be >= 0, got {warmup_steps}.")
    if warmup_steps == 0:
        return ops.convert_to_tensor(end, "float32")
    progress = ops.minimum(ops.cast(step, "float32") / float(warmup_steps), 1.0)
    return start + (end - start) * progress


def teacher_entropy(teacher_logits_list, center, teacher_temp):
    """Mean entropy (nats) of the centred, sharpened teacher distribution.

    DINO's collapse monitor (paper, figure 7): it tends to log K when the
    outputs collapse to the uniform distribution and to 0 when one dimension
    dominates. `dino_loss − teacher_entropy` is the mean KL(P_t ‖ P_s), which
    tends to 0 under either collapse.
    """
    probs = teacher_probabilities(teacher_logits_list, center, teacher_temp)
    entropies = [
        ops.mean(-ops.sum(q * ops.log(ops.maximum(q, 1e-30)), axis=-1))
        for q in probs
    ]
    return sum(entropies[1:], entropies[0]) / len(entropies)

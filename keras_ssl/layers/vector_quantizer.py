"""Vector quantisation with an EMA codebook (VQ-VAE, van den Oord et al. 2017).

The layer maps each `code_dim` vector of its input to the nearest of
`num_codes` codebook vectors, passes gradients straight through to its input
and, when asked (`update_codebook`, in training), moves the codebook by
exponential moving averages of the vectors assigned to each code (the
paper's appendix A.1; Razavi et al. 2019) and restarts codes that fell out
of use at encoder outputs of the current batch (as Jukebox, Dhariwal et al.
2020). The math is in small pure functions below, each testable alone.
"""

import keras
from keras import ops

from keras_ssl.losses.vq import code_counts


def squared_distances(z, codebook):
    """`||z||² − 2 z·e + ||e||²` between rows, in float32.

    Args:
        z: `(M, D)` vectors.
        codebook: `(V, D)` codes.

    Returns:
        `(M, V)` squared L2 distances.
    """
    z = ops.cast(z, "float32")
    codebook = ops.cast(codebook, "float32")
    return (
        ops.sum(ops.square(z), axis=-1, keepdims=True)
        - 2.0 * ops.matmul(z, ops.transpose(codebook))
        + ops.sum(ops.square(codebook), axis=-1)[None, :]
    )


def nearest_codes(z, codebook):
    """The id of the nearest code of each `code_dim` vector of `z`.

    Args:
        z: `(..., D)` vectors (no gradient flows through the search).
        codebook: `(V, D)` codes.

    Returns:
        int32 `z.shape[:-1]`; ties go to the lowest id.
    """
    z = ops.stop_gradient(ops.convert_to_tensor(z))
    flat = ops.reshape(z, (-1, ops.shape(z)[-1]))
    codes = ops.argmin(squared_distances(flat, codebook), axis=-1)
    return ops.reshape(ops.cast(codes, "int32"), ops.shape(z)[:-1])


def straight_through(z, z_q):
    """`z + sg(z_q − z)`: the value of `z_q`, the gradient of `z`.

    "we approximate the gradient similar to the straight-through estimator
    and just copy gradients from decoder input z_q(x) to encoder output
    z_e(x)" (van den Oord et al., 2017).
    """
    z = ops.convert_to_tensor(z)
    z_q = ops.cast(z_q, z.dtype)
    return z + ops.stop_gradient(z_q - z)


def laplace_smoothing(cluster_size, epsilon):
    """`(N_i + ε) / (n + V·ε) · n`, with `n = Σ N_i` (Sonnet's VQ-VAE).

    Keeps every smoothed count positive, so that `sums / counts` is defined
    for codes that nobody chose, and leaves the total `n` unchanged.
    """
    total = ops.sum(cluster_size)
    num_codes = ops.cast(ops.shape(cluster_size)[0], cluster_size.dtype)
    return (cluster_size + epsilon) / (total + num_codes * epsilon) * total


def ema_codebook_update(cluster_size, ema_sums, z, codes, decay, epsilon):
    """One EMA step of the codebook (VQ-VAE, appendix A.1).

    ```
    N_i ← γ N_i + (1 − γ) n_i                   # n_i: vectors assigned to i
    m_i ← γ m_i + (1 − γ) Σ_{j: code j = i} z_j
    e_i ← m_i / Ñ_i                             # Ñ: Laplace-smoothed N
    ```

    Args:
        cluster_size: `(V,)` EMA counts N.
        ema_sums: `(V, D)` EMA sums m.
        z: `(M, D)` vectors of the batch (used without gradient).
        codes: `(M,)` their code ids.
        decay: γ.
        epsilon: ε of the Laplace smoothing.

    Returns:
        `(new_cluster_size, new_ema_sums, new_codebook)`, float32.
    """
    z = ops.stop_gradient(ops.cast(z, "float32"))
    cluster_size = ops.cast(cluster_size, "float32")
    ema_sums = ops.cast(ema_sums, "float32")
    num_codes = cluster_size.shape[0]
    one_hot = ops.one_hot(ops.cast(codes, "int32"), num_codes, dtype="float32")
    counts = ops.sum(one_hot, axis=0)
    sums = ops.matmul(ops.transpose(one_hot), z)
    new_size = decay * cluster_size + (1.0 - decay) * counts
    new_sums = decay * ema_sums + (1.0 - decay) * sums
    new_codebook = new_sums / laplace_smoothing(new_size, epsilon)[:, None]
    return new_size, new_sums, new_codebook


def restart_dead_codes(
    codebook, cluster_size, ema_sums, candidates, threshold, restart_count=1.0
):
    """Codes whose EMA count is under `threshold` move to `candidates`.

    A restarted code i takes `candidates[i]` (an encoder output of the
    batch, drawn at random), and its statistics restart as if it had been
    assigned that vector `restart_count` times: `N_i = restart_count`,
    `m_i = restart_count · candidates[i]`.

    Args:
        codebook: `(V, D)`.
        cluster_size: `(V,)` EMA counts.
        ema_sums: `(V, D)` EMA sums.
        candidates: `(V, D)` replacement vectors, one per code.
        threshold: a code with `N_i < threshold` is dead.
        restart_count: the count a restarted code starts with.

    Returns:
        `(codebook, cluster_size, ema_sums, dead)`, `dead` a `(V,)` bool mask.
    """
    candidates = ops.stop_gradient(ops.cast(candidates, "float32"))
    dead = cluster_size < threshold
    column = dead[:, None]
    return (
        ops.where(column, candidates, codebook),
        ops.where(dead, restart_count, cluster_size),
        ops.where(column, restart_count * candidates, ema_sums),
        dead,
    )


@keras.saving.register_keras_serializable(package="keras_ssl")
class VectorQuantizer(keras.layers.Layer):
    """Nearest-code quantisation with an EMA-updated codebook.

    `call(z)` returns `(quantized, codes)`: `quantized` has the value of the
    nearest codes and passes gradients straight through to `z`
    (`z + sg(z_q − z)`); `codes` are their int32 ids, of shape
    `z.shape[:-1]`. The codebook is not trainable: it moves only through
    `update_codebook(z, codes)`, which the model calls in its training step
    (VQ-VAE "use[s] exponential moving averages [...] as a replacement for
    the codebook loss"):

    ```
    N_i ← γ N_i + (1 − γ) n_i;  m_i ← γ m_i + (1 − γ) Σ_{z → i} z
    e_i ← m_i / Ñ_i        (Ñ: counts with Laplace smoothing ε)
    if N_i < dead_code_threshold: e_i ← a random z of the batch
    ```

    Details:

    - State (non-trainable variables, saved with the model): `codebook`
      `(V, D)`, `ema_cluster_size` N `(V,)` and `ema_sums` m `(V, D)`. N
      starts at 1 and m at the initial codebook (each code as the mean of
      one vector), so that an unused code stays where it is while its count
      decays.
    - Dead codes: after the EMA step, every code whose EMA count is under
      `dead_code_threshold` moves to an encoder output of the current batch
      drawn uniformly (from a `keras.random.SeedGenerator` stored on the
      layer: different draws at every jit-compiled step), with N = m/e = 1
      (Jukebox's restart, threshold 1 by default). N is an average count
      *per batch*, so the threshold reads "codes chosen less than once per
      batch on average". With N starting at 1, the first training step
      restarts every code that the batch did not choose: a data-dependent
      initialisation. `dead_code_threshold=0` turns restarts off.
    - `update_codebook` does nothing when the layer is frozen
      (`trainable=False`), like the moving statistics of a frozen
      `BatchNormalization`.
    - Distances and the EMA run in float32; `quantized` has `z`'s dtype.
    - Under `tf.distribute` pass `update_codebook` the gathered global batch
      (`VQTokenizer` does): every replica then computes the same state,
      which is stored once (`aggregation="only_first_replica"`); under JAX
      `keras.distribution` the step sees the global batch.

    Args:
        num_codes: V, the codebook size.
        code_dim: D, the width of the vectors quantised (the input's last axis).
        decay: γ of the EMA (paper: 0.99).
        epsilon: ε of the Laplace smoothing of the counts (Sonnet: 1e-5).
        dead_code_threshold: the EMA count under which a code is restarted
            (0: never).
        seed: seed of the initial codebook and of the restarts' generator.

    Example:

    >>> import numpy as np
    >>> vq = VectorQuantizer(num_codes=8, code_dim=4, seed=0)
    >>> z = np.random.rand(2, 3, 3, 4).astype("float32")  # e.g. encoder outputs
    >>> quantized, codes = vq(z)
    >>> tuple(quantized.shape), tuple(codes.shape)
    ((2, 3, 3, 4), (2, 3, 3))
    >>> keras.backend.standardize_dtype(codes.dtype)
    'int32'
    >>> restarted = vq.update_codebook(z, codes)  # in a training step
    """

    def __init__(
        self,
        num_codes,
        code_dim,
        decay=0.99,
        epsilon=1e-5,
        dead_code_threshold=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_codes) != num_codes or num_codes < 1:
            raise ValueError(
                f"VectorQuantizer `num_codes` must be a positive integer; got "
                f"{num_codes}."
            )
        if int(code_dim) != code_dim or code_dim < 1:
            raise ValueError(
                f"VectorQuantizer `code_dim` must be a positive integer; got "
                f"{code_dim}."
            )
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(
                f"VectorQuantizer `decay` (γ of the codebook's EMA) must be in "
                f"[0, 1); got {decay}. VQ-VAE uses 0.99."
            )
        if not float(epsilon) > 0.0:
            raise ValueError(
                f"VectorQuantizer `epsilon` (Laplace smoothing) must be "
                f"positive; got {epsilon}."
            )
        if not float(dead_code_threshold) >= 0.0:
            raise ValueError(
                "VectorQuantizer `dead_code_threshold` (an EMA count per "
                f"batch) must be >= 0; got {dead_code_threshold}."
            )
        self.num_codes = int(num_codes)
        self.code_dim = int(code_dim)
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.dead_code_threshold = float(dead_code_threshold)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="restart_seed")

    def build(self, input_shape):
        if input_shape is not None and input_shape[-1] not in (None, self.code_dim):
            raise ValueError(
                f"VectorQuantizer with code_dim={self.code_dim} expects inputs "
                f"whose last axis is {self.code_dim}; got shape "
                f"{tuple(input_shape)}."
            )
        shape = (self.num_codes, self.code_dim)
        state = dict(trainable=False, dtype="float32",
                     aggregation="only_first_replica")
        self.codebook = self.add_weight(
            shape=shape,
            initializer=keras.initializers.VarianceScaling(
                1.0, mode="fan_out", distribution="uniform", seed=self.seed
            ),
            name="codebook",
            **state,
        )
        self.ema_cluster_size = self.add_weight(
            shape=(self.num_codes,), initializer="ones",
            name="ema_cluster_size", **state,
        )
        self.ema_sums = self.add_weight(
            shape=shape, initializer="zeros", name="ema_sums", **state
        )
        # m = N·e with N = 1: a copy of the values (never the same array,
        # which JAX would donate twice).
        self.ema_sums.assign(ops.copy(ops.convert_to_tensor(self.codebook)))
        self.built = True

    # --- lookup ---------------------------------------------------------------
    def nearest_codes(self, z):
        """int32 ids `z.shape[:-1]` of the nearest codes (no side effects)."""
        return nearest_codes(z, self.codebook)

    def lookup(self, codes):
        """The code vectors of `codes`: `codes.shape + (code_dim,)`, float32."""
        return ops.take(
            ops.convert_to_tensor(self.codebook), ops.cast(codes, "int32"), axis=0
        )

    def call(self, inputs):
        codes = self.nearest_codes(inputs)
        return straight_through(inputs, self.lookup(codes)), codes

    def compute_output_spec(self, inputs):
        return (
            keras.KerasTensor(inputs.shape, dtype=inputs.dtype),
            keras.KerasTensor(inputs.shape[:-1], dtype="int32"),
        )

    # --- training -------------------------------------------------------------
    def update_codebook(self, z, codes):
        """EMA step and dead-code restarts from a batch; call it in training.

        Assigns new values to the codebook and its statistics, computed from
        stop-gradient copies (the current loss never reads them again, so
        PyTorch's in-place copies are safe, and under JAX the assignments
        flow out of the jitted step with the other non-trainable state).
        Does nothing when the layer is frozen.

        Args:
            z: `(..., code_dim)` encoder outputs of the batch.
            codes: their ids from `nearest_codes`, shape `z.shape[:-1]`.

        Returns:
            The number of codes restarted (an int32 scalar), or `None` when
            frozen.
        """
        if not self.trainable:
            return None
        z = ops.stop_gradient(ops.cast(z, "float32"))
        flat = ops.reshape(z, (-1, self.code_dim))
        codes = ops.reshape(ops.stop_gradient(codes), (-1,))
        size, sums, codebook = ema_codebook_update(
            ops.convert_to_tensor(self.ema_cluster_size),
            ops.convert_to_tensor(self.ema_sums),
            flat,
            codes,
            self.decay,
            self.epsilon,
        )
        restarted = ops.zeros((), "int32")
        if self.dead_code_threshold > 0.0:
            count = ops.shape(flat)[0]
            draw = keras.random.uniform((self.num_codes,), seed=self.seed_generator)
            rows = ops.cast(
                ops.floor(draw * ops.cast(count, "float32")), "int32"
            )
            rows = ops.clip(rows, 0, count - 1)
            candidates = ops.take(flat, rows, axis=0)
            codebook, size, sums, dead = restart_dead_codes(
                codebook, size, sums, candidates, self.dead_code_threshold
            )
            restarted = ops.sum(ops.cast(dead, "int32"))
        self.ema_cluster_size.assign(size)
        self.ema_sums.assign(sums)
        self.codebook.assign(codebook)
        return restarted

    def code_counts(self, codes):
        """How often each code occurs in `codes`, float32 `(num_codes,)`."""
        return code_counts(codes, self.num_codes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_codes": self.num_codes,
                "code_dim": self.code_dim,
                "decay": self.decay,
                "epsilon": self.epsilon,
                "dead_code_threshold": self.dead_code_threshold,
                "seed": self.seed,
            }
        )
        return config

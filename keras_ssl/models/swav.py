"""SwAV: swapping assignments between views (Caron et al., 2020)."""

import keras
from keras import ops

from keras_ssl.layers.heads import MLPHead
from keras_ssl.losses.contrastive import l2_normalize
from keras_ssl.losses.swav import (
    code_entropy,
    prototype_usage,
    sinkhorn_knopp,
    swapped_prediction_loss,
)
from keras_ssl.models.ssl_model import (
    NUM_GLOBAL_CROPS,
    SSLModel,
    _multi_replica_context,
    is_int,
)


@keras.saving.register_keras_serializable(package="keras_ssl")
class SwAV(SSLModel):
    """SwAV (Caron et al., 2020): predict a view's cluster code from another.

    "We compute a code from an augmented version of the image and predict
    this code from other augmented versions of the same image. Given two
    image features z_t and z_s from two different augmentations of the same
    image, we compute their codes q_t and q_s by matching these features to
    a set of K prototypes {c_1, ..., c_K}. We then setup a 'swapped'
    prediction problem." The codes are an online, equal-partition soft
    clustering of the batch (Sinkhorn-Knopp), which keeps the embeddings
    from collapsing without negative pairs. The paper's Algorithm 1, which
    `call` and `compute_loss` follow:

    ```
    # C: prototypes (DxK)
    # model: convnet + projection head
    # temp: temperature
    for x in loader:  # load a batch x with B samples
        x_t = t(x)  # t is a random augmentation
        x_s = s(x)  # s is a another random augmentation
        z = model(cat(x_t, x_s))  # embeddings: 2BxD
        scores = mm(z, C)  # prototype scores: 2BxK
        scores_t = scores[:B]
        scores_s = scores[B:]
        # compute assignments
        with torch.no_grad():
            q_t = sinkhorn(scores_t)
            q_s = sinkhorn(scores_s)
        # convert scores to probabilities
        p_t = Softmax(scores_t / temp)
        p_s = Softmax(scores_s / temp)
        # swap prediction problem
        loss = - 0.5 * mean(q_t * log(p_s) + q_s * log(p_t))
        # SGD update: network and prototypes
        loss.backward()
        update(model.params)
        update(C)
        # normalize prototypes
        with torch.no_grad():
            C = normalize(C, dim=0, p=2)
    # Sinkhorn-Knopp
    def sinkhorn(scores, eps=0.05, niters=3):
        Q = exp(scores / eps).T
        Q /= sum(Q)
        K, B = Q.shape
        u, r, c = zeros(K), ones(K) / K, ones(B) / B
        for _ in range(niters):
            u = sum(Q, dim=1)
            Q *= (r / u).unsqueeze(1)
            Q *= (c / sum(Q, dim=0)).unsqueeze(0)
        return (Q / sum(Q, dim=0, keepdim=True)).T
    ```

    How this model follows it:

    - **Embeddings**: z = l2-normalise(projector(h)), h the pooled encoder
      features, the projector an `MLPHead` (linear → batch norm → ReLU →
      linear, as the paper's 2048-wide head).
    - **Prototypes**: `prototypes`, a trainable `(num_prototypes,
      projection_dim)` weight C; scores = z · normalise(C)ᵀ, cosines in
      [-1, 1]. Normalising C in the forward pass plays the role of the
      paper's normalising the prototypes after every step (the scores only
      see unit prototypes; the gradient reaches C through the
      normalisation, so it has no radial component). An optimizer's
      decoupled weight decay may shrink C's norm, which the scores ignore.
    - **Multi-crop**: 2 global crops and N local crops; the global crops
      run through the encoder as one batch, the local crops as another.
      Codes are computed for the global crops only ("we only compute codes
      using the full resolution crops"); every crop predicts the codes of
      each global crop but its own (`keras_ssl.losses.swav.
      swapped_prediction_loss`).
    - **Codes**: Sinkhorn-Knopp (`keras_ssl.losses.swav.sinkhorn_knopp`)
      with ε = `sinkhorn_epsilon` and `sinkhorn_iterations` iterations,
      without gradient.
    - **Queue** (`queue_size > 0`, the paper's fix for batches smaller than
      the number of prototypes): `queue`, `(2, queue_size,
      projection_dim)`, holds past global-crop embeddings z, one slot per
      global crop, newest first (zeros at the start), and `queue_count`
      how many rows are filled. From optimizer step `queue_start_step` on,
      every training step pushes the batch's z of each global crop into its
      slot (the oldest rows drop out, as the official code shifts rows).
      Once the queue is full (before the step), the codes of global crop i
      are those of Sinkhorn-Knopp over [queue_i · normalise(C)ᵀ; the
      batch's scores], of which only the batch's rows are kept. `queue_size`
      must be divisible by the global batch size. With gradient
      accumulation every micro-batch is pushed.
    - **Frozen prototypes**: during the first `freeze_prototypes_steps`
      optimizer steps no gradient reaches C (the official code drops the
      prototypes' gradients then). The step is read from `steps_done`, a
      counter `after_step` sets to `optimizer.iterations` (so the jitted
      step reads the current value on every backend; a resumed run
      restores it).
    - **Many devices** ("global Sinkhorn", the official
      `distributed_sinkhorn`, whose sums are all-reduced): the codes
      partition the global batch. Under `tf.distribute` each replica
      gathers the global crops' scores (and the z pushed to the queue)
      across replicas (`gather_across_replicas`), runs Sinkhorn-Knopp over
      the global batch (and the queue) and keeps its own rows; every
      replica holds the same queue. Under JAX `keras.distribution` the step
      sees the global batch. One step on several devices equals one step
      on one device (tests/models/test_distribution.py).

    Representations for downstream use are the encoder's: `model.encoder`.

    Inputs: a tuple of `2 + num_local_crops` image batches in [0, 1], the 2
    global crops `(B, G, G, C)` first, then the local crops `(B, L, L, C)`,
    as made by `keras_ssl.data.multicrop.multi_crop_dataset`. With local
    crops the encoder must accept both sizes (e.g. `image_shape=(None,
    None, 3)`; `keras_ssl.models.with_free_image_size` rebuilds one).

    Args:
        encoder: a `keras.Model` mapping images to features (feature maps
            and token sequences are average-pooled).
        num_prototypes: K, the number of prototypes (paper: 3000 on
            ImageNet; about 10× the number of classes).
        projection_dim: D, the width of the embeddings z (paper: 128).
        projection_hidden_dims: hidden widths of the projection head (paper:
            `(2048,)`).
        num_local_crops: N, the number of local crops (paper: 6).
        temperature: τ of the predictions' softmax (paper: 0.1).
        sinkhorn_epsilon: ε of Sinkhorn-Knopp (paper: 0.05; 0.03 with
            small batches and a queue).
        sinkhorn_iterations: Sinkhorn-Knopp iterations (paper: 3).
        queue_size: rows of past embeddings per global crop used for the
            codes (paper: 3840 with batches of 256; 0 = no queue).
        queue_start_step: the optimizer step from which the queue is filled
            (paper: epoch 15).
        freeze_prototypes_steps: optimizer steps during which the
            prototypes get no gradient (paper: the first epoch, 313 steps at
            batch 4096).

    Metrics logged beside the loss: `code_entropy`, the mean entropy of the
    global crops' codes (log K when every sample is spread evenly over the
    prototypes, as when all embeddings are equal; it falls as assignments
    become confident), and `prototype_usage`, `exp(H(p̄))/K` for p̄ the
    batch-mean prediction `softmax(scores/τ)` of the global crops: the
    effective fraction of prototypes in use (1/K when every image is
    predicted onto one prototype; at most min(B, K)/K).

    Example:

    ```python
    import keras, keras_ssl
    from keras_ssl.data.multicrop import MultiCropAugmentation, multi_crop_dataset
    from keras_ssl.models.swav import SwAV
    data = keras_ssl.data.load_image_data("digits")
    crops = multi_crop_dataset(data.x_unlabeled, MultiCropAugmentation(
        16, 8, num_local_crops=4, local_scale=(0.1, 0.4)), batch_size=128)
    encoder = keras_ssl.backbones.CIFARResNetBackbone(
        (32, 64, 128), (1, 1, 1), image_shape=(None, None, 3))
    model = SwAV(encoder, num_prototypes=100, projection_dim=64,
                 projection_hidden_dims=(512,), num_local_crops=4,
                 queue_size=1024, queue_start_step=300,
                 freeze_prototypes_steps=100)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(crops, epochs=2)
    ```
    """

    batch_statistic = "the codes partition the batch among the prototypes"
    nan_hints = (
        "a temperature or Sinkhorn epsilon too low (SwAV: temperature 0.1, "
        "sinkhorn_epsilon 0.03-0.05)",
    )

    def __init__(
        self,
        encoder,
        num_prototypes=3000,
        projection_dim=128,
        projection_hidden_dims=(2048,),
        num_local_crops=6,
        temperature=0.1,
        sinkhorn_epsilon=0.05,
        sinkhorn_iterations=3,
        queue_size=0,
        queue_start_step=0,
        freeze_prototypes_steps=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("temperature", temperature),
            ("sinkhorn_epsilon", sinkhorn_epsilon),
        ):
            if not value > 0:
                raise ValueError(f"SwAV `{name}` must be positive, got {value}.")
        for name, value, minimum in (
            ("num_prototypes", num_prototypes, 1),
            ("projection_dim", projection_dim, 1),
            ("num_local_crops", num_local_crops, 0),
            ("sinkhorn_iterations", sinkhorn_iterations, 1),
            ("queue_size", queue_size, 0),
            ("queue_start_step", queue_start_step, 0),
            ("freeze_prototypes_steps", freeze_prototypes_steps, 0),
        ):
            if not is_int(value) or value < minimum:
                raise ValueError(
                    f"SwAV `{name}` must be an integer >= {minimum}, got {value}."
                )
        self.encoder = encoder
        self.num_prototypes = int(num_prototypes)
        self.projection_dim = int(projection_dim)
        self.projection_hidden_dims = tuple(int(d) for d in projection_hidden_dims)
        self.num_local_crops = int(num_local_crops)
        self.temperature = float(temperature)
        self.sinkhorn_epsilon = float(sinkhorn_epsilon)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.queue_size = int(queue_size)
        self.queue_start_step = int(queue_start_step)
        self.freeze_prototypes_steps = int(freeze_prototypes_steps)

        # C, one prototype per row, normalised in the forward pass; float32
        # under mixed precision (scores and codes are float32).
        self.prototypes = self.add_weight(
            shape=(self.num_prototypes, self.projection_dim),
            initializer="glorot_uniform",
            dtype="float32",
            trainable=True,
            autocast=False,
            name="prototypes",
        )
        # The optimizer steps done before the current one (`after_step`),
        # for the prototypes' freeze and the queue's start.
        self.steps_done = self.add_weight(
            shape=(),
            initializer="zeros",
            dtype="int32",
            trainable=False,
            aggregation="only_first_replica",
            name="steps_done",
        )
        self.queue = self.queue_count = None
        if self.queue_size:
            self.queue = self.add_weight(
                shape=(NUM_GLOBAL_CROPS, self.queue_size, self.projection_dim),
                initializer="zeros",
                dtype="float32",
                trainable=False,
                aggregation="only_first_replica",
                name="queue",
            )
            self.queue_count = self.add_weight(
                shape=(),
                initializer="zeros",
                dtype="int32",
                trainable=False,
                aggregation="only_first_replica",
                name="queue_count",
            )
        self.projector = None
        self.build_networks_early()
        self.add_metric_trackers("code_entropy", "prototype_usage")

    # --- inputs ---------------------------------------------------------------
    def _check_queue_size(self, batch_size):
        """`queue_size` must be a multiple of the global batch size."""
        if not self.queue_size or batch_size is None:
            return
        context = _multi_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        global_batch = batch_size * replicas
        if self.queue_size % global_batch:
            raise ValueError(
                f"SwAV `queue_size` ({self.queue_size}) must be divisible by "
                f"the global batch size ({global_batch}), so that the queue "
                "holds whole batches; choose a batch size that divides it or "
                f"a queue_size multiple of {global_batch}."
            )

    # --- model ----------------------------------------------------------------
    def build_networks(self, feature_dim, image_shape=None):
        """Creates the projection head (linear → BN → ReLU → linear)."""
        self.projector = MLPHead(
            self.projection_hidden_dims,
            self.projection_dim,
            use_batch_norm=True,
            name="projector",
        )
        self.projector.build((None, feature_dim))

    def build(self, crops_shape):
        shapes = self.check_crop_shapes(crops_shape, self.num_local_crops)
        self.check_encoder_accepts(shapes)
        self._check_queue_size(shapes[0][0])
        self.build_networks_late(shapes[0])
        self.built = True

    def embed(self, images, training=False):
        """z = l2-normalise(projector(h)), float32 `(B, projection_dim)`."""
        z = self.projector(self.encode(images, training), training=training)
        return l2_normalize(ops.cast(z, "float32"))

    def normalized_prototypes(self, training=False):
        """normalise(C), `(num_prototypes, projection_dim)`; during the first
        `freeze_prototypes_steps` training steps, without gradient."""
        prototypes = ops.convert_to_tensor(self.prototypes)
        if training and self.freeze_prototypes_steps:
            frozen = ops.less(
                ops.convert_to_tensor(self.steps_done),
                self.freeze_prototypes_steps,
            )
            prototypes = ops.where(
                frozen, ops.stop_gradient(prototypes), prototypes
            )
        return l2_normalize(prototypes)

    def call(self, crops, training=False):
        """Returns `{"scores": [...], "embeddings": [...]}`: the prototype
        scores z·normalise(C)ᵀ `(B, K)` of every crop (globals first) and the
        embeddings z `(B, D)` of the global crops."""
        global_crops, local_crops = self.check_crops(crops, self.num_local_crops)
        if training:
            self._check_queue_size(global_crops[0].shape[0])
        prototypes = ops.transpose(self.normalized_prototypes(training))
        z = self.embed(ops.concatenate(global_crops, axis=0), training)
        scores = list(
            ops.split(ops.matmul(z, prototypes), NUM_GLOBAL_CROPS, axis=0)
        )
        embeddings = list(ops.split(z, NUM_GLOBAL_CROPS, axis=0))
        if local_crops:
            z_local = self.embed(ops.concatenate(local_crops, axis=0), training)
            scores += ops.split(
                ops.matmul(z_local, prototypes), len(local_crops), axis=0
            )
        return {"scores": scores, "embeddings": embeddings}

    def _sinkhorn(self, scores):
        return sinkhorn_knopp(
            scores, self.sinkhorn_epsilon, self.sinkhorn_iterations
        )

    def assign_codes(self, global_scores, embeddings, training=False):
        """The codes q of the global crops, this replica's rows: Sinkhorn-
        Knopp over the global batch's scores (after the queue's, once it is
        full). In training, pushes the global batch's embeddings into the
        queue (after reading it)."""
        batch = ops.shape(global_scores[0])[0]
        gathered = [
            self.gather_across_replicas(ops.stop_gradient(ops.cast(s, "float32")))
            for s in global_scores
        ]
        offset = gathered[0][1]

        def own_rows(q):
            # This replica's rows of the global batch's codes.
            if _multi_replica_context() is None:
                return q
            return ops.slice(q, (offset, 0), (batch, self.num_prototypes))

        if not self.queue_size:
            return [own_rows(self._sinkhorn(s)) for s, _ in gathered]
        queue = ops.convert_to_tensor(self.queue)
        count = ops.convert_to_tensor(self.queue_count)
        # The official "last row non-zero" test: every row filled.
        full = ops.greater_equal(count, self.queue_size)
        prototypes = ops.stop_gradient(self.normalized_prototypes())
        codes = []
        for i, (scores, _) in enumerate(gathered):
            alone = self._sinkhorn(scores)
            queue_scores = ops.matmul(queue[i], ops.transpose(prototypes))
            with_queue = self._sinkhorn(
                ops.concatenate([queue_scores, scores], axis=0)
            )[self.queue_size:]
            # Both, selected by a tensor (traced steps have no branches).
            q = ops.where(full, with_queue, alone)
            codes.append(own_rows(q))
        if training:
            self._push(queue, count, embeddings)
        return codes

    def _push(self, queue, count, embeddings):
        """queue[i] ← [z_i of the global batch; queue[i]][:queue_size], from
        optimizer step `queue_start_step` on; every replica pushes the
        same (gathered) rows."""
        rows = [
            ops.stop_gradient(self.gather_across_replicas(z)[0]) for z in embeddings
        ]
        new_queue = ops.stack(
            [
                ops.concatenate([ops.cast(z, "float32"), queue[i]], axis=0)[
                    : self.queue_size
                ]
                for i, z in enumerate(rows)
            ],
            axis=0,
        )
        new_count = ops.minimum(
            count + ops.cast(ops.shape(rows[0])[0], "int32"), self.queue_size
        )
        if self.queue_start_step:
            started = ops.greater_equal(
                ops.convert_to_tensor(self.steps_done), self.queue_start_step
            )
            new_queue = ops.where(started, new_queue, queue)
            new_count = ops.where(started, new_count, count)
        self.queue.assign(new_queue)
        self.queue_count.assign(new_count)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        scores, embeddings = list(y_pred["scores"]), list(y_pred["embeddings"])
        codes = self.assign_codes(
            scores[:NUM_GLOBAL_CROPS], embeddings, training=training
        )
        loss = swapped_prediction_loss(scores, codes, self.temperature)
        self.track(
            code_entropy=code_entropy(codes),
            prototype_usage=prototype_usage(
                scores[:NUM_GLOBAL_CROPS], self.temperature
            ),
        )
        return loss

    def after_step(self):
        # The optimizer has counted this step: the next one is `iterations`.
        self.steps_done.assign(ops.cast(self.optimizer.iterations, "int32"))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "num_prototypes": self.num_prototypes,
                "projection_dim": self.projection_dim,
                "projection_hidden_dims": list(self.projection_hidden_dims),
                "num_local_crops": self.num_local_crops,
                "temperature": self.temperature,
                "sinkhorn_epsilon": self.sinkhorn_epsilon,
                "sinkhorn_iterations": self.sinkhorn_iterations,
                "queue_size": self.queue_size,
                "queue_start_step": self.queue_start_step,
                "freeze_prototypes_steps": self.freeze_prototypes_steps,
            }
        )
        return config

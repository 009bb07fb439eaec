"""MoCo: momentum contrast, with a queue of keys (v2) or in-batch keys (v3)."""

import keras
from keras import ops

from keras_ssl.layers.heads import MLPHead
from keras_ssl.losses.contrastive import l2_normalize
from keras_ssl.losses.moco import infonce_in_batch, infonce_with_queue
from keras_ssl.models.ssl_model import (
    SSLModel,
    is_int,
    clone_as_target,
    cosine_schedule,
    pool_features,
    use_batch_statistics,
)



class _MomentumContrast(SSLModel):
    """What MoCo v2 and v3 share: a query network (encoder f_q + projector),
    a key network (f_k + projector) that follows it by EMA, two views, and
    the metrics. Subclasses add the heads' shapes, the negatives and the loss.
    """

    nan_hints = (
        "a temperature too low (MoCo: 0.07-0.2)",
    )

    def __init__(
        self,
        encoder,
        projection_dim,
        projection_hidden_dims,
        temperature,
        momentum,
        final_momentum,
        total_steps,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        for arg, value in (
            ("momentum", momentum),
            ("final_momentum", final_momentum),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"{name} `{arg}` must be in [0, 1] (the key encoder's EMA "
                    f"momentum m), got {value}."
                )
        if not temperature > 0:
            raise ValueError(
                f"{name} `temperature` must be positive, got {temperature}."
            )
        if total_steps is not None and (
            not is_int(total_steps) or total_steps < 1
        ):
            raise ValueError(
                f"{name} `total_steps` (the length of the momentum's cosine "
                f"schedule, in optimizer steps) must be an integer >= 1 or "
                f"None (constant momentum), got {total_steps}."
            )
        self.encoder = encoder
        self.projection_dim = int(projection_dim)
        self.projection_hidden_dims = tuple(int(d) for d in projection_hidden_dims)
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.final_momentum = float(final_momentum)
        self.total_steps = None if total_steps is None else int(total_steps)
        # `optimizer.iterations` at the latest key-encoder update: the EMA
        # runs only when an optimizer step has happened since (gradient
        # accumulation runs `after_step` after every micro-batch).
        self.target_step = self.add_weight(
            shape=(),
            initializer="zeros",
            dtype="int32",
            trainable=False,
            aggregation="only_first_replica",
            name="target_step",
        )
        self.add_metric_trackers(
            "positive_similarity", "negative_similarity", "representation_std"
        )
        self.projector = self.key_encoder = self.key_projector = None

    # --- networks -------------------------------------------------------------
    def _make_projector(self):
        raise NotImplementedError

    def _build_heads(self, feature_dim):
        """Builds heads beyond the projector (MoCo v3's predictor)."""

    def build_networks(self, feature_dim, image_shape=None):
        self.projector = self._make_projector()
        self.projector.build((None, feature_dim))
        self._build_heads(feature_dim)
        # θk ← θq at the start: copies of the values (with variable paths of
        # their own), frozen before compile().
        self.key_encoder = clone_as_target(
            self.encoder, image_shape, name="key_encoder"
        )
        self.key_projector = clone_as_target(
            self.projector, (None, feature_dim), name="key_projector"
        )
        # The key network normalises with batch statistics, as in MoCo's code
        # (its BN layers run in training mode); its BN parameters follow the
        # query's by EMA, its moving statistics its own forward passes.
        for network in (self.key_encoder, self.key_projector):
            use_batch_statistics(network)

    def build(self, views_shape):
        self.build_networks_late(self.view_shape(views_shape))
        self.built = True

    def query_features(self, images, training=False):
        """The query network's projections g_q(f_q(x))."""
        return self.projector(self.encode(images, training), training=training)

    def key_features(self, images, training=False):
        """The key network's projections g_k(f_k(x)), without gradient."""
        features = pool_features(self.key_encoder(images, training=training),
                                 self.key_encoder)
        return ops.stop_gradient(self.key_projector(features, training=training))

    # --- momentum -------------------------------------------------------------
    def momentum_at(self, step):
        """m at optimizer step k: constant, or `1 − (1 − m)(cos(πk/K) + 1)/2`
        (rising to `final_momentum`) when `total_steps` K is set."""
        if self.total_steps is None:
            return self.momentum
        return cosine_schedule(
            step, self.total_steps, self.momentum, self.final_momentum
        )

    def after_step(self):
        # `optimizer.iterations` counts optimizer steps (micro-batches that
        # only accumulate gradients leave it as is): after step k it is k + 1.
        iterations = ops.cast(self.optimizer.iterations, "int32")
        stepped = ops.not_equal(iterations, ops.convert_to_tensor(self.target_step))
        m = ops.where(stepped, self.momentum_at(iterations - 1), 1.0)
        self.target_step.assign(iterations)
        # θk ← m·θk + (1 − m)·θq; m = 1 leaves θk as is after a micro-batch.
        target, online = self.parameter_pairs(
            (self.key_encoder, self.key_projector), (self.encoder, self.projector)
        )
        self.ema_update(target, online, m)

    # --- metrics --------------------------------------------------------------
    def _track_similarities(self, queries, keys, negative_similarity):
        queries = [ops.stop_gradient(l2_normalize(ops.cast(q, "float32")))
                   for q in queries]
        keys = [l2_normalize(ops.cast(k, "float32")) for k in keys]
        positive = [ops.mean(ops.sum(q * k, axis=-1)) for q, k in zip(queries, keys)]
        negative = [negative_similarity(q, k) for q, k in zip(queries, keys)]
        self.track(
            positive_similarity=sum(positive) / len(positive),
            negative_similarity=sum(negative) / len(negative),
            representation_std=ops.mean(
                ops.std(ops.concatenate(queries, axis=0), axis=0)
            ),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "projection_dim": self.projection_dim,
                "projection_hidden_dims": list(self.projection_hidden_dims),
                "temperature": self.temperature,
                "momentum": self.momentum,
                "final_momentum": self.final_momentum,
                "total_steps": self.total_steps,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_ssl")
class MoCo(_MomentumContrast):
    """MoCo v2 (He et al., 2020; Chen et al., 2020): momentum contrast.

    "We maintain the dictionary as a queue of data samples: the encoded
    representations of the current mini-batch are enqueued, and the oldest
    are dequeued. [...] the keys in the dictionary [...] are encoded by a
    slowly progressing encoder, implemented as a momentum-based moving
    average of the query encoder." MoCo v2 adds "an MLP projection head and
    more data augmentation". The paper's Algorithm 1, which `call`,
    `compute_loss` and `after_step` follow:

    ```
    # f_q, f_k: encoder networks for query and key
    # queue: dictionary as a queue of K keys (CxK)
    # m: momentum; t: temperature
    f_k.params = f_q.params  # initialize
    for x in loader:  # load a minibatch x with N samples
        x_q = aug(x)  # a randomly augmented version
        x_k = aug(x)  # another randomly augmented version
        q = f_q.forward(x_q)  # queries: NxC
        k = f_k.forward(x_k)  # keys: NxC
        k = k.detach()  # no gradient to keys
        l_pos = bmm(q.view(N,1,C), k.view(N,C,1))  # positive logits: Nx1
        l_neg = mm(q.view(N,C), queue.view(C,K))  # negative logits: NxK
        logits = cat([l_pos, l_neg], dim=1)  # logits: Nx(1+K)
        labels = zeros(N)  # positives are the 0-th
        loss = CrossEntropyLoss(logits/t, labels)
        loss.backward()  # SGD update: query network
        update(f_q.params)
        f_k.params = m*f_k.params+(1-m)*f_q.params  # momentum update: key network
        enqueue(queue, k)  # enqueue the current minibatch
        dequeue(queue)  # dequeue the earliest minibatch
    ```

    Choices made here, and why:

    - **Symmetric loss** (`symmetric=True`, default): views `(v1, v2)` are
      `(x_q, x_k)` and also `(x_k, x_q)`: the loss is the mean of
      `InfoNCE(q1, k2, queue)` and `InfoNCE(q2, k1, queue)`, as solo-learn's
      MoCo v2+ computes it (the official MoCo CIFAR-10 demo offers the same
      option, summed: "the symmetric loss behaves like 2x epochs of the
      asymmetric counterpart"). The mean keeps the paper's scale (log(K + 1)
      at chance). `symmetric=False` is the paper's one-directional loss,
      with half the forward passes.
    - **What is enqueued**: the keys of the second view only, `k2 = f_k(x_k)`,
      L2-normalised: B keys per step, as in the paper, so a key stays in the
      queue for exactly K/B steps (K must be divisible by the batch size B).
      Both directions share this one queue as negatives (solo-learn keeps a
      queue per view; the CIFAR-10 demo enqueues both views' keys, which
      halves how long a key stays for the same K). The queue is a ring
      buffer (`queue`, `(K, dim)`, and `queue_pointer`, the row the next
      batch is written at); it starts as random unit vectors, as in the
      paper's code. The update happens in `compute_loss` after the loss is
      computed (from a normalised copy of the queue, so PyTorch can update
      the variable in place before the backward pass); under JAX the
      assignment flows out of the jitted step with the other non-trainable
      state. With gradient accumulation every micro-batch's keys are
      enqueued (they are the keys the accumulated batch would enqueue; the
      key encoder does not move until the optimizer step), while the
      key-encoder EMA moves once per optimizer step.
    - **Shuffling BN on one device** (`shuffle_bn_splits`): with batch norm
      in the encoder, a query and its positive key normalised with the
      statistics of the same images leak which keys belong to the current
      batch (the only current-batch key among the logits is the positive),
      and "the model appears to 'cheat' the pretext task". MoCo shuffles the
      key batch across GPUs so that "the batch statistics used to compute a
      query and its positive key come from two different subsets". On one
      device shuffling is a no-op for batch norm (full-batch statistics do
      not depend on the order), so this model emulates the multi-GPU layout,
      as lightly's `SplitBatchNorm` and the official MoCo CIFAR demo do,
      but without replacing the encoder's layers: in training each view's
      batch runs through the query network as `S` contiguous sub-batches
      (`S` "GPUs") and through the key network as `S` interleaved
      sub-batches (examples `j, j + S, j + 2S, ...`), each sub-batch with its
      own batch statistics. A query's and its key's statistics then come
      from different subsets that share only B/S² examples — what a random
      shuffle over S GPUs gives on average. The batch must hold at least 2
      examples per split. Batch-norm moving statistics move once per
      sub-batch. `shuffle_bn_splits=1` turns this off (encoders without
      batch norm). In inference the networks run on the whole batch.
    - **Centred projections** (`projection_batch_norm=True`, a departure
      from the paper's head, as in SimCLR v2's and MoCo v3's heads): at
      random initialisation the paper's linear → ReLU → linear head maps
      every image to nearly the same direction (cosine ≈ 0.9 between any two
      images with small CNNs), while the queue starts as random unit
      vectors: at step 1 every positive then towers over the queue's
      negatives (cosine ≈ 0.93 against ≈ 0; with K = 1024 the loss is ≈ 2.5
      where log(K + 1) ≈ 6.9), and the loss jumps once the queue fills with
      real keys. Batch norm on the head's output centres the projections
      over the batch, so real keys and the initial random keys look alike
      to the loss from the start (positives ≈ 0.3–0.5, loss ≈ 4.5–5.5 in
      the same test).
    - Under JAX `keras.distribution.DataParallel` the step sees the global
      batch: all keys are enqueued. Under `tf.distribute` the keys are
      gathered across replicas before they are enqueued (the paper's
      `concat_all_gather`), so every replica holds the same queue. Shuffling
      BN then shuffles within each replica's batch; with
      `synchronized_batch_norm=True` use `shuffle_bn_splits=1`.

    Representations for downstream use are the query encoder's:
    `model.encoder`.

    Args:
        encoder: any `keras.Model` mapping images `(B, H, W, C)` in [0, 1] to
            features (feature maps are average-pooled); it must be rebuildable
            from `get_config()`, since the key encoder is a copy of it.
        projection_dim: width of the projections q, k (paper: 128).
        projection_hidden_dims: hidden widths of the MLP head (MoCo v2:
            `(2048,)`: linear → ReLU → linear).
        projection_batch_norm: batch norm (without scale) after the head's
            output layer (see "Centred projections" above); `False` is the
            paper's head.
        queue_size: K, the number of negative keys (paper: 65,536).
        temperature: τ (MoCo v2: 0.2).
        momentum: m (paper: 0.999; 0.99 suits runs of a few thousand steps).
        final_momentum: m at `total_steps`, when it is set.
        total_steps: `None` (the paper's constant m), or the number of
            optimizer steps over which m rises from `momentum` to
            `final_momentum` on a cosine schedule (as MoCo v3 and BYOL).
        symmetric: symmetrise the loss over the two views (see above).
        shuffle_bn_splits: S, the number of simulated devices of the
            shuffling-BN emulation (see above); 1 turns it off.

    Metrics logged beside the loss: `positive_similarity`, the mean cosine
    of each query with its key; `negative_similarity`, the mean cosine of
    the queries with the queue's keys; `representation_std`, the
    per-dimension std of the normalised queries averaged over dimensions (it
    falls to 0 when the representation collapses; about 1/sqrt(dim) when
    spread out).

    Example:

    ```python
    import keras, keras_ssl
    from keras_ssl.models.moco import MoCo
    data = keras_ssl.data.load_image_data("digits")
    views = keras_ssl.data.multi_view_dataset(
        data.x_unlabeled, keras_ssl.data.SimCLRAugmentation(16), batch_size=128)
    encoder = keras_ssl.backbones.CIFARResNetBackbone(
        (32, 64, 128), (1, 1, 1), image_shape=(16, 16, 3))
    model = MoCo(encoder, projection_dim=64, projection_hidden_dims=(256,),
                 queue_size=4096, momentum=0.99)
    model.compile(optimizer=keras.optimizers.SGD(0.06, momentum=0.9))
    model.fit(views, epochs=10)
    encoder.save("encoder.keras")
    ```
    """

    def __init__(
        self,
        encoder,
        projection_dim=128,
        projection_hidden_dims=(2048,),
        queue_size=65536,
        temperature=0.2,
        momentum=0.999,
        final_momentum=1.0,
        total_steps=None,
        projection_batch_norm=True,
        symmetric=True,
        shuffle_bn_splits=2,
        **kwargs,
    ):
        super().__init__(
            encoder,
            projection_dim=projection_dim,
            projection_hidden_dims=projection_hidden_dims,
            temperature=temperature,
            momentum=momentum,
            final_momentum=final_momentum,
            total_steps=total_steps,
            **kwargs,
        )
        if not is_int(queue_size) or queue_size < 1:
            raise ValueError(
                "MoCo `queue_size` (K, the number of negative keys) must be an "
                f"integer >= 1, got {queue_size}."
            )
        if not is_int(shuffle_bn_splits) or shuffle_bn_splits < 1:
            raise ValueError(
                "MoCo `shuffle_bn_splits` must be an integer >= 1 (1 turns "
                f"the shuffling-BN emulation off), got {shuffle_bn_splits}."
            )
        self.queue_size = int(queue_size)
        self.projection_batch_norm = bool(projection_batch_norm)
        self.symmetric = bool(symmetric)
        self.shuffle_bn_splits = int(shuffle_bn_splits)
        # The dictionary: K L2-normalised keys, oldest overwritten first.
        self.queue = self.add_weight(
            shape=(self.queue_size, self.projection_dim),
            initializer=_random_unit_rows,
            dtype="float32",
            trainable=False,
            aggregation="only_first_replica",
            name="queue",
        )
        # The row the next batch of keys is written at.
        self.queue_pointer = self.add_weight(
            shape=(),
            initializer="zeros",
            dtype="int32",
            trainable=False,
            aggregation="only_first_replica",
            name="queue_pointer",
        )
        self.build_networks_early()

    def _make_projector(self):
        return MLPHead(
            self.projection_hidden_dims,
            self.projection_dim,
            use_batch_norm=False,
            output_batch_norm=self.projection_batch_norm,
            name="projector",
        )

    def build(self, views_shape):
        super().build(views_shape)
        self._check_queue_size(self.view_shape(views_shape)[0])

    def _check_queue_size(self, batch_size):
        if batch_size is not None and self.queue_size % batch_size:
            raise ValueError(
                f"MoCo `queue_size` ({self.queue_size}) must be divisible by "
                f"the batch size ({batch_size}), so that every batch of keys "
                "is enqueued whole and stays K/B steps; choose a batch size "
                f"that divides it or a queue_size multiple of {batch_size}."
            )

    def _check_batch_size(self, batch_size):
        if batch_size is None:
            return
        self._check_queue_size(batch_size)
        if batch_size < 2 * self.shuffle_bn_splits:
            raise ValueError(
                f"MoCo with `shuffle_bn_splits={self.shuffle_bn_splits}` "
                f"needs batches of at least {2 * self.shuffle_bn_splits} "
                f"images (2 per split); got a batch of {batch_size}."
            )
        if batch_size % self.shuffle_bn_splits:
            raise ValueError(
                f"MoCo: the batch size ({batch_size}) must be divisible by "
                f"`shuffle_bn_splits` ({self.shuffle_bn_splits})."
            )

    def call(self, views, training=False):
        """Returns `{"queries": (q1, q2), "keys": (k2, k1)}`: `keys[i]` is
        the positive key of `queries[i]`; `keys[0]` is enqueued. With
        `symmetric=False`, only `(q1,)` and `(k2,)`."""
        v1, v2 = self.check_views(views, num_views=2)
        splits = 1
        if training:
            self._check_batch_size(v1.shape[0])
            splits = self.shuffle_bn_splits
        pairs = [(v1, v2), (v2, v1)] if self.symmetric else [(v1, v2)]
        queries, keys = [], []
        for x_q, x_k in pairs:
            queries.append(
                _in_splits(
                    lambda x: self.query_features(x, training), x_q, splits
                )
            )
            keys.append(
                _in_splits(
                    lambda x: self.key_features(x, training),
                    x_k,
                    splits,
                    interleaved=True,
                )
            )
        return {"queries": tuple(queries), "keys": tuple(keys)}

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        queries, keys = y_pred["queries"], y_pred["keys"]
        queue = ops.convert_to_tensor(self.queue)
        losses = [
            infonce_with_queue(q, k, queue, self.temperature)
            for q, k in zip(queries, keys)
        ]
        loss = sum(losses) / len(losses)
        mean_negative = ops.mean(l2_normalize(queue), axis=0)
        # mean_j cos(q, n_j) = q · mean_j(n_j): no (B, K) product needed.
        self._track_similarities(
            queries,
            keys,
            lambda q, _: ops.mean(ops.matmul(q, mean_negative)),
        )
        if training:
            # enqueue(queue, k); dequeue(queue): after the loss read the queue.
            # The keys of the global batch, so every replica's queue is
            # the same (MoCo's concat_all_gather before enqueue).
            global_keys, _ = self.gather_across_replicas(keys[0])
            new_queue, new_pointer = enqueue(
                queue,
                self.queue_pointer,
                l2_normalize(ops.cast(global_keys, "float32")),
            )
            self.queue.assign(new_queue)
            self.queue_pointer.assign(new_pointer)
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "queue_size": self.queue_size,
                "projection_batch_norm": self.projection_batch_norm,
                "symmetric": self.symmetric,
                "shuffle_bn_splits": self.shuffle_bn_splits,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_ssl")
class MoCoV3(_MomentumContrast):
    """MoCo v3 (Chen, Xie & He, 2021): momentum contrast without a queue.

    "We use the keys that naturally co-exist in the same batch. We abandon
    the memory queue, which we find has diminishing gain if the batch is
    sufficiently large (e.g., 4096). [...] the encoder f_q consists of a
    backbone (e.g., ResNet, ViT), a projection head, and an extra prediction
    head; the encoder f_k has the backbone and projection head, but not the
    prediction head. f_k is updated by the moving-average of f_q." The
    paper's Algorithm 1, which `call`, `compute_loss` and `after_step`
    follow:

    ```
    # f_q: encoder: backbone + proj mlp + pred mlp
    # f_k: momentum encoder: backbone + proj mlp
    # m: momentum coefficient
    # tau: temperature
    for x in loader:  # load a minibatch x with N samples
        x1, x2 = aug(x), aug(x)  # augmentation
        q1, q2 = f_q(x1), f_q(x2)  # queries: [N, C] each
        k1, k2 = f_k(x1), f_k(x2)  # keys: [N, C] each
        loss = ctr(q1, k2) + ctr(q2, k1)  # symmetrized
        loss.backward()
        update(f_q)  # optimizer update: f_q
        f_k = m*f_k + (1-m)*f_q  # momentum update: f_k
    # contrastive loss
    def ctr(q, k):
        logits = mm(q, k.t())  # [N, N] pairs
        labels = range(N)  # positives are in diagonal
        loss = CrossEntropyLoss(logits/tau, labels)
        return 2 * tau * loss
    ```

    Details:

    - Heads as in the paper: a 3-layer projector and a 2-layer predictor,
      batch norm after every linear layer (the last one without a learned
      scale).
    - Batch norm: all negatives are keys of the current batch, so batch
      statistics shared by a query and its key carry no "current batch"
      signal that would single the positive out; each view runs as one
      batch (as on one device, or JAX `DataParallel`, whose global batch
      statistics correspond to the paper's SyncBN). The key network
      normalises with batch statistics.
    - Works with any backbone whose features are vectors, feature maps or
      token sequences (average-pooled), e.g. keras-hub's `ViTBackbone`.
      MoCo v3's frozen random patch projection for ViTs is left to the user
      (set the patch embedding layer's `trainable = False` before compile).
    - Momentum: constant by default; with `total_steps` it follows the
      paper's cosine schedule from `momentum` (0.99) to `final_momentum` (1),
      read from `optimizer.iterations` (a resumed run continues it), and
      moves once per optimizer step under gradient accumulation.
    - The negatives are the global batch's: under JAX `keras.distribution`
      the step sees it, under `tf.distribute` the keys are gathered across
      replicas (the paper's `concat_all_gather`).

    Args:
        encoder: a `keras.Model` mapping images to features, rebuildable
            from `get_config()` (the key encoder is a copy).
        projection_dim: width of the projections and predictions (paper: 256).
        projection_hidden_dims: hidden widths of the projector (paper:
            `(4096, 4096)`).
        prediction_hidden_dims: hidden widths of the predictor (paper:
            `(4096,)`).
        temperature: τ (the paper's code: 1.0 for ResNet-50, 0.2 for ViT).
        momentum: m at step 0 (paper: 0.99).
        final_momentum: m at `total_steps` (paper: 1.0).
        total_steps: `None` (constant m) or the number of optimizer steps of
            the cosine schedule of m.

    Metrics logged beside the loss: `positive_similarity` (mean cosine of
    each query with its key), `negative_similarity` (mean cosine of each
    query with the other images' keys of the batch) and
    `representation_std` (per-dimension std of the normalised queries,
    averaged over dimensions; 0 under collapse).

    Example:

    ```python
    import keras, keras_hub
    from keras_ssl.models.moco import MoCoV3
    vit = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=4, num_layers=6, num_heads=4,
        hidden_dim=192, mlp_dim=384)
    model = MoCoV3(vit, projection_dim=128, projection_hidden_dims=(512, 512),
                   prediction_hidden_dims=(512,), total_steps=10_000)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.1))
    ```
    """

    def __init__(
        self,
        encoder,
        projection_dim=256,
        projection_hidden_dims=(4096, 4096),
        prediction_hidden_dims=(4096,),
        temperature=0.2,
        momentum=0.99,
        final_momentum=1.0,
        total_steps=None,
        **kwargs,
    ):
        super().__init__(
            encoder,
            projection_dim=projection_dim,
            projection_hidden_dims=projection_hidden_dims,
            temperature=temperature,
            momentum=momentum,
            final_momentum=final_momentum,
            total_steps=total_steps,
            **kwargs,
        )
        self.prediction_hidden_dims = tuple(int(d) for d in prediction_hidden_dims)
        self.predictor = None
        self.build_networks_early()

    def _make_projector(self):
        return MLPHead(
            self.projection_hidden_dims,
            self.projection_dim,
            output_batch_norm=True,
            name="projector",
        )

    def _build_heads(self, feature_dim):
        self.predictor = MLPHead(
            self.prediction_hidden_dims,
            self.projection_dim,
            output_batch_norm=True,
            name="predictor",
        )
        self.predictor.build((None, self.projection_dim))

    def call(self, views, training=False):
        """Returns `{"queries": (q1, q2), "keys": (k2, k1)}`: `keys[i]` is
        the positive key of `queries[i]`."""
        v1, v2 = self.check_views(views, num_views=2)
        q1, q2 = (
            self.predictor(self.query_features(v, training), training=training)
            for v in (v1, v2)
        )
        k1, k2 = (self.key_features(v, training) for v in (v1, v2))
        return {"queries": (q1, q2), "keys": (k2, k1)}

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        queries, keys = y_pred["queries"], y_pred["keys"]
        # loss = ctr(q1, k2) + ctr(q2, k1), ctr = 2τ · cross-entropy.
        # Negatives: the keys of the global batch (MoCo v3's
        # concat_all_gather; the identity without tf.distribute replicas).
        loss = 2.0 * self.temperature * sum(
            infonce_in_batch(
                q, k, self.temperature, self.gather_across_replicas(k)[0]
            )
            for q, k in zip(queries, keys)
        )
        self._track_similarities(queries, keys, _mean_off_diagonal_cosine)
        return loss

    def get_config(self):
        config = super().get_config()
        config["prediction_hidden_dims"] = list(self.prediction_hidden_dims)
        return config


def enqueue(queue, pointer, keys):
    """MoCo's `enqueue(queue, k); dequeue(queue)` as a ring-buffer update.

    Writes the n keys at rows `pointer, ..., pointer + n − 1` (modulo K),
    overwriting the oldest keys, and advances the pointer.

    Args:
        queue: `(K, D)` keys.
        pointer: scalar int, the row the next key is written at.
        keys: `(n, D)` keys, n ≤ K.

    Returns:
        `(new_queue, new_pointer)`.
    """
    queue = ops.convert_to_tensor(queue)
    size = ops.shape(queue)[0]
    count = ops.shape(keys)[0]
    pointer = ops.cast(pointer, "int32")
    rows = ops.mod(pointer + ops.arange(count, dtype="int32"), size)
    new_queue = ops.scatter_update(
        queue,
        ops.expand_dims(rows, -1),
        ops.cast(ops.stop_gradient(ops.convert_to_tensor(keys)), queue.dtype),
    )
    return new_queue, ops.mod(pointer + count, size)


def _in_splits(fn, x, splits, interleaved=False):
    """`fn` run on `splits` sub-batches of `x` separately (each with its own
    batch statistics), outputs back in `x`'s order.

    Sub-batch j holds examples `[j·B/S, (j + 1)·B/S)` (contiguous) or
    `j, j + S, j + 2S, ...` (interleaved).
    """
    if splits == 1:
        return fn(x)
    rest = tuple(x.shape[1:])
    if interleaved:
        grouped = ops.reshape(x, (-1, splits) + rest)
        outputs = ops.stack([fn(grouped[:, j]) for j in range(splits)], axis=1)
    else:
        grouped = ops.reshape(x, (splits, -1) + rest)
        outputs = ops.stack([fn(grouped[j]) for j in range(splits)], axis=0)
    return ops.reshape(outputs, (-1,) + tuple(outputs.shape[2:]))


def _mean_off_diagonal_cosine(q, k):
    """Mean of q_i·k_j over i ≠ j, for unit rows, in O(N·D)."""
    n = ops.cast(ops.shape(q)[0], "float32")
    total = ops.sum(ops.sum(q, axis=0) * ops.sum(k, axis=0))
    diagonal = ops.sum(q * k)
    return (total - diagonal) / (n * (n - 1.0))


def _random_unit_rows(shape, dtype=None):
    """The queue's initial keys: random unit vectors (as the paper's code)."""
    return l2_normalize(keras.random.normal(shape, dtype=dtype or "float32"))

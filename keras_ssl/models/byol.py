"""BYOL: Bootstrap Your Own Latent, self-supervised learning without negatives."""

import keras
from keras import ops

from keras_ssl.layers.heads import MLPHead
from keras_ssl.losses.byol import symmetric_byol_loss
from keras_ssl.models.ssl_model import (
    SSLModel,
    clone_as_target,
    cosine_schedule,
    pool_features,
    representation_std,
    use_batch_statistics,
)


@keras.saving.register_keras_serializable(package="keras_ssl")
class BYOL(SSLModel):
    """BYOL (Grill et al., 2020).

    "BYOL's goal is to learn a representation y_θ which can then be used for
    downstream tasks. [...] BYOL uses two neural networks to learn: the online
    and target networks. The online network is defined by a set of weights θ
    and is comprised of three stages: an encoder f_θ, a projector g_θ and a
    predictor q_θ. [...] The target network has the same architecture as the
    online network, but uses a different set of weights ξ. [...] the target
    network parameters ξ are an exponential moving average of the online
    parameters θ. More precisely, given a target decay rate τ ∈ [0, 1], after
    each training step we perform the following update, ξ ← τξ + (1 − τ)θ."

    The paper's algorithm, which `call`, `compute_loss` and `after_step`
    follow (there are no negatives anywhere):

    ```
    for minibatch x, at step k of K:
        v1, v2 = t(x), t'(x)                       # two augmented views
        p1, p2 = q(g(f(v1))), q(g(f(v2)))          # online: θ
        z1', z2' = g'(f'(v1)), g'(f'(v2))          # target: ξ, no gradient
        loss = (2 − 2 cos(p1, z2')) + (2 − 2 cos(p2, z1'))
        θ ← optimizer(θ, ∇_θ loss)
        τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2
        ξ ← τ ξ + (1 − τ) θ                        # once per optimizer step
    ```

    Details:

    - Each view goes through each network separately, as in the official
      implementation, so batch norm sees one view's batch at a time. The
      target network normalises with batch statistics too (as the paper's
      code and PyTorch ports do): Keras' frozen `BatchNormalization` would
      use its moving statistics, so the target's batch-norm layers are kept
      in training mode while all their variables stay non-trainable.
    - The EMA moves the target's parameters (kernels, biases, batch-norm
      scales and offsets) towards the online ones; the target's batch-norm
      moving statistics follow its own forward passes.
    - k is the index of the optimizer step just taken, read from
      `optimizer.iterations` (so a resumed run continues the schedule); with
      `gradient_accumulation_steps` the target moves once per optimizer step,
      not once per micro-batch (`target_step` remembers the step of the
      latest update).
    - The two directions of the loss are summed, as in the paper (range
      [0, 8]), so the paper's learning rates and weight decay carry over.

    Representations for downstream use are the online encoder's:
    `model.encoder`.

    Args:
        encoder: any `keras.Model` mapping images `(B, H, W, C)` in [0, 1] to
            features (feature maps are average-pooled); it must be rebuildable
            from `get_config()` (functional models, keras-hub backbones), since
            the target encoder is a copy of it.
        total_steps: K, the number of optimizer steps of the whole run, over
            which τ rises from `base_momentum` to `final_momentum`.
        projection_dim: width of the projections z (paper: 256).
        projection_hidden_dims: hidden widths of the projector g (paper:
            `(4096,)`, linear → batch norm → ReLU → linear).
        prediction_hidden_dims: hidden widths of the predictor q, whose output
            is `projection_dim` wide ("the same architecture as g_θ").
        base_momentum: τ_base, the target decay rate at step 0 (paper: 0.996;
            0.99 suits runs of a few thousand steps).
        final_momentum: τ at step K (paper: 1.0). Set it equal to
            `base_momentum` for a constant momentum.

    Metrics logged beside the loss: `representation_std`, the per-dimension
    std of the normalised online projections averaged over dimensions (it
    falls to 0 when the representation collapses; about 1/sqrt(d) when spread
    out), and `tau`, the momentum of the latest target update.

    Example:

    ```python
    import keras, keras_ssl
    from keras_ssl.models.byol import BYOL
    data = keras_ssl.data.load_image_data("digits")
    views = keras_ssl.data.multi_view_dataset(
        data.x_unlabeled, keras_ssl.data.byol_augmentations(16), batch_size=128)
    encoder = keras_ssl.backbones.CIFARResNetBackbone(
        (32, 64, 128), (1, 1, 1), image_shape=(16, 16, 3))
    epochs, steps = 10, len(data.x_unlabeled) // 128
    model = BYOL(encoder, total_steps=epochs * steps, base_momentum=0.99,
                 projection_dim=128, projection_hidden_dims=(512,),
                 prediction_hidden_dims=(512,))
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    model.fit(views, epochs=epochs)
    encoder.save("encoder.keras")
    ```
    """

    def __init__(
        self,
        encoder,
        total_steps,
        projection_dim=256,
        projection_hidden_dims=(4096,),
        prediction_hidden_dims=(4096,),
        base_momentum=0.996,
        final_momentum=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("base_momentum", base_momentum),
            ("final_momentum", final_momentum),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"BYOL `{name}` must be in [0, 1] (the target decay rate "
                    f"τ), got {value}."
                )
        if (
            isinstance(total_steps, bool)
            or int(total_steps) != total_steps
            or total_steps < 1
        ):
            raise ValueError(
                "BYOL `total_steps` (K, the number of optimizer steps of the "
                f"run) must be an integer >= 1, got {total_steps}. Use "
                "`epochs * steps_per_epoch`."
            )
        self.encoder = encoder
        self.total_steps = int(total_steps)
        self.projection_dim = int(projection_dim)
        self.projection_hidden_dims = tuple(int(d) for d in projection_hidden_dims)
        self.prediction_hidden_dims = tuple(int(d) for d in prediction_hidden_dims)
        self.base_momentum = float(base_momentum)
        self.final_momentum = float(final_momentum)
        # τ of the latest target update (saved, so a loaded model reports it).
        self.tau = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.base_momentum),
            trainable=False,
            name="tau",
        )
        # `optimizer.iterations` at the latest target update: the EMA runs
        # only when an optimizer step has happened since.
        self.target_step = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False,
            name="target_step",
        )
        self.add_metric_trackers("representation_std", "tau")

        self.projector = self.predictor = None
        self.target_encoder = self.target_projector = None
        self.build_networks_early()

    def build(self, views_shape):
        self.build_networks_late(self.view_shape(views_shape))
        self.built = True

    def build_networks(self, feature_dim, image_shape=None):
        self.projector = MLPHead(
            self.projection_hidden_dims, self.projection_dim, name="projector"
        )
        self.projector.build((None, feature_dim))
        self.predictor = MLPHead(
            self.prediction_hidden_dims, self.projection_dim, name="predictor"
        )
        self.predictor.build((None, self.projection_dim))
        # ξ starts as a copy of θ (encoder and projector; no predictor). The
        # name scope gives the copies' variables paths of their own: under
        # PyTorch a model registers its parameters by path, and a clash would
        # silently unregister the online encoder's (never zeroed gradients).
        with keras.name_scope("target_encoder"):
            self.target_encoder = clone_as_target(
                self.encoder, image_shape, name="target_encoder"
            )
        self.target_projector = clone_as_target(
            self.projector, (None, feature_dim), name="target_projector"
        )
        for network in (self.target_encoder, self.target_projector):
            use_batch_statistics(network)

    def call(self, views, training=False):
        v1, v2 = self.check_views(views, num_views=2)
        # Online network θ: representation y, projection z, prediction p.
        z1, z2 = (
            self.projector(self.encode(v, training=training), training=training)
            for v in (v1, v2)
        )
        p1, p2 = (self.predictor(z, training=training) for z in (z1, z2))
        # Target network ξ: projection z', a constant for the gradient.
        t1, t2 = (
            ops.stop_gradient(
                self.target_projector(
                    pool_features(self.target_encoder(v, training=training),
                                  self.target_encoder),
                    training=training,
                )
            )
            for v in (v1, v2)
        )
        return {
            "online_predictions": (p1, p2),
            "online_projections": (z1, z2),
            "target_projections": (t1, t2),
        }

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        p1, p2 = y_pred["online_predictions"]
        t1, t2 = y_pred["target_projections"]
        z1, z2 = y_pred["online_projections"]
        loss = symmetric_byol_loss(p1, p2, t1, t2)
        self.track(
            representation_std=representation_std(ops.concatenate([z1, z2], axis=0)),
            tau=ops.convert_to_tensor(self.tau),
        )
        return loss

    def momentum_at(self, step):
        """τ at optimizer step k: 1 − (1 − τ_base)(cos(πk/K) + 1)/2."""
        return cosine_schedule(
            step, self.total_steps, self.base_momentum, self.final_momentum
        )

    def after_step(self):
        # `optimizer.iterations` counts optimizer steps (with gradient
        # accumulation, micro-batches that only accumulate leave it as is):
        # after optimizer step k it reads k + 1.
        iterations = ops.cast(self.optimizer.iterations, "int32")
        stepped = ops.not_equal(iterations, ops.convert_to_tensor(self.target_step))
        tau = ops.where(
            stepped,
            self.momentum_at(iterations - 1),
            ops.convert_to_tensor(self.tau),
        )
        self.tau.assign(tau)
        self.target_step.assign(iterations)
        target, online = self.parameter_pairs(
            (self.target_encoder, self.target_projector),
            (self.encoder, self.projector),
        )
        # τ = 1 leaves ξ exactly as it is after a micro-batch.
        self.ema_update(target, online, ops.where(stepped, tau, 1.0))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "total_steps": self.total_steps,
                "projection_dim": self.projection_dim,
                "projection_hidden_dims": list(self.projection_hidden_dims),
                "prediction_hidden_dims": list(self.prediction_hidden_dims),
                "base_momentum": self.base_momentum,
                "final_momentum": self.final_momentum,
            }
        )
        return config

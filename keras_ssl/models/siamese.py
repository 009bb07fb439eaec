"""What SimSiam, Barlow Twins and VICReg share: one encoder and one
projector applied to each of two views, and an objective on the two
projections (no negatives, no momentum encoder)."""

import keras
from keras import ops

from keras_ssl.layers.heads import MLPHead
from keras_ssl.models.ssl_model import SSLModel, representation_std


class SiameseModel(SSLModel):
    """Two views through the same encoder f and projector g, separately.

    `call` returns `(z1, z2)` (and whatever `heads` adds); each view goes
    through the networks on its own, as in the three papers' code, so batch
    norm sees one view's batch at a time. Subclasses write `compute_loss`
    and may add heads in `build_heads`.

    Args:
        encoder: any `keras.Model` mapping images `(B, H, W, C)` in [0, 1]
            to features (feature maps and tokens are average-pooled).
        projection_dim: width of the projections z.
        projection_hidden_dims: hidden widths of the projector (linear →
            batch norm → ReLU each).
        projection_output_batch_norm: batch norm after the projector's last
            linear layer (SimSiam).
    """

    def __init__(
        self,
        encoder,
        projection_dim,
        projection_hidden_dims,
        projection_output_batch_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.projection_dim = int(projection_dim)
        self.projection_hidden_dims = tuple(int(d) for d in projection_hidden_dims)
        self.projection_output_batch_norm = bool(projection_output_batch_norm)
        self.projector = None  # built once the feature width is known
        self.add_metric_trackers("representation_std")

    def build(self, views_shape):
        image_shape = self.view_shape(views_shape)
        if not self.encoder.built:
            self.encoder.build(image_shape)
        feature_dim = self.encoder.compute_output_shape(image_shape)[-1]
        self.projector = MLPHead(
            self.projection_hidden_dims,
            self.projection_dim,
            output_batch_norm=self.projection_output_batch_norm,
            name="projector",
        )
        self.projector.build((None, feature_dim))
        self.build_heads()
        self.built = True

    def build_heads(self):
        """Creates heads beyond the projector (SimSiam's predictor)."""

    def project(self, images, training=False):
        """z = g(f(x)) for one view."""
        return self.projector(self.encode(images, training=training),
                              training=training)

    def call(self, views, training=False):
        views = self.check_views(views, num_views=2)
        return tuple(self.project(v, training=training) for v in views)

    def gather_views(self, z1, z2):
        """Both views' projections over the global batch (a cross-replica
        gather with gradient under `tf.distribute`, the identity elsewhere),
        for objectives on batch statistics."""
        return (self.gather_across_replicas(z1)[0],
                self.gather_across_replicas(z2)[0])

    def track_representation_std(self, z1, z2):
        """`representation_std`: the per-dimension std of the normalised
        projections averaged over dimensions (0 when they collapse, about
        1/sqrt(d) when spread out)."""
        self.track(representation_std=representation_std(
            ops.concatenate([z1, z2], axis=0)))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "projection_dim": self.projection_dim,
                "projection_hidden_dims": list(self.projection_hidden_dims),
            }
        )
        return config

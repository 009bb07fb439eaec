"""SimCLR: a simple framework for contrastive learning of visual representations."""

import keras
from keras import ops

from keras_ssl.layers.heads import MLPHead
from keras_ssl.losses.contrastive import l2_normalize, nt_xent_loss
from keras_ssl.models.ssl_model import SSLModel


@keras.saving.register_keras_serializable(package="keras_ssl")
class SimCLR(SSLModel):
    """SimCLR (Chen et al., 2020).

    For a batch of N images, two augmented views of each are encoded by the
    same encoder f and projection head g; NT-Xent pulls the two projections of
    an image together and pushes the other 2(N − 1) projections away. The
    paper's pseudo-code, which `call` + `compute_loss` follow:

    ```
    for minibatch x:
        h1, h2 = f(aug(x)), f(aug(x))        # representations
        z1, z2 = g(h1), g(h2)                # projections
        loss = nt_xent(z1, z2, τ)            # both directions, 2N anchors
    ```

    Both views go through the encoder in one batch of 2N, so batch norm sees
    statistics over all 2N images as in the paper. Representations for
    downstream use are taken *before* the projection head: `model.encoder`.

    Many devices: the negatives are the global batch's. Under JAX
    `keras.distribution` the step sees it; under `tf.distribute` the
    projections are gathered across replicas with gradient
    (`SSLModel.gather_across_replicas`), and `synchronized_batch_norm=True`
    gives batch norm the global batch's statistics too (the paper's global
    BN), so N replicas take the step of one device on the whole batch.

    Args:
        encoder: any `keras.Model` mapping images `(B, H, W, C)` in [0, 1] to
            features: a `CIFARResNetBackbone`, a keras-hub backbone (feature
            maps are average-pooled), a `keras.applications` model, or your own.
        projection_dim: width of the projection z (paper: 128).
        projection_hidden_dims: hidden widths of the projection MLP; `None`
            uses one hidden layer as wide as the encoder's features (paper).
        temperature: NT-Xent temperature τ (0.5 suits small batches; the paper
            uses 0.1–0.2 with batches of 4096).

    Metrics logged beside the loss: `positive_similarity`, the mean cosine
    similarity of the two views' projections, and `representation_std`, the
    per-dimension std of the normalised projections averaged over dimensions
    (it falls to 0 when the projections collapse; 1/sqrt(d) when spread out).

    Example:

    ```python
    import keras, keras_ssl
    data = keras_ssl.data.load_image_data("digits")
    views = keras_ssl.data.multi_view_dataset(
        data.x_unlabeled, keras_ssl.data.SimCLRAugmentation(16), batch_size=128)
    encoder = keras_ssl.backbones.CIFARResNetBackbone(
        (32, 64, 128), (1, 1, 1), image_shape=(16, 16, 3))
    model = keras_ssl.models.SimCLR(encoder, temperature=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(views, epochs=2)
    encoder.save("encoder.keras")
    ```
    """

    nan_hints = (
        "a temperature too low (SimCLR: 0.1-0.5; exp(sim / t) overflows in "
        "float16 below ~0.05)",
    )

    def __init__(
        self,
        encoder,
        projection_dim=128,
        projection_hidden_dims=None,
        temperature=0.5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(
                f"SimCLR `temperature` must be positive, got {temperature}."
            )
        self.encoder = encoder
        self.projection_dim = int(projection_dim)
        self.projection_hidden_dims = (
            None
            if projection_hidden_dims is None
            else tuple(int(d) for d in projection_hidden_dims)
        )
        self.temperature = float(temperature)
        self.projector = None  # built once the feature width is known
        self.add_metric_trackers("positive_similarity", "representation_std")

    def build(self, views_shape):
        image_shape = self.view_shape(views_shape)
        if not self.encoder.built:
            self.encoder.build(image_shape)
        feature_shape = self.encoder.compute_output_shape(image_shape)
        feature_dim = feature_shape[-1]
        hidden = self.projection_hidden_dims or (feature_dim,)
        self.projector = MLPHead(
            hidden_dims=hidden, output_dim=self.projection_dim, name="projector"
        )
        self.projector.build((None, feature_dim))
        self.built = True

    def call(self, views, training=False):
        views = self.check_views(views, num_views=2)
        h = self.encode(ops.concatenate(views, axis=0), training=training)
        z = self.projector(h, training=training)
        z1, z2 = ops.split(z, 2, axis=0)
        return z1, z2

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        z1, z2 = y_pred
        # Negatives from the global batch (a cross-replica gather with
        # gradient under tf.distribute; the identity elsewhere).
        all_z1, offset = self.gather_across_replicas(z1)
        all_z2, _ = self.gather_across_replicas(z2)
        loss = nt_xent_loss(z1, z2, self.temperature, all_z1, all_z2, offset)
        n1, n2 = l2_normalize(z1), l2_normalize(z2)
        self.track(
            positive_similarity=ops.mean(ops.sum(n1 * n2, axis=-1)),
            representation_std=ops.mean(
                ops.std(ops.concatenate([n1, n2], axis=0), axis=0)
            ),
        )
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "projection_dim": self.projection_dim,
                "projection_hidden_dims": (
                    None
                    if self.projection_hidden_dims is None
                    else list(self.projection_hidden_dims)
                ),
                "temperature": self.temperature,
            }
        )
        return config

"""Barlow Twins: self-supervised learning via redundancy reduction."""

import keras
from keras import ops

from keras_ssl.losses.barlow_twins import barlow_twins_loss, cross_correlation
from keras_ssl.models.siamese import SiameseModel


@keras.saving.register_keras_serializable(package="keras_ssl")
class BarlowTwins(SiameseModel):
    """Barlow Twins (Zbontar et al., 2021).

    "The objective function [...] measures the cross-correlation matrix
    between the embeddings of two identical networks fed with distorted
    versions of a batch of samples, and tries to make this matrix close to
    the identity." The paper's Algorithm 1, which `call` and `compute_loss`
    follow:

    ```
    for x in loader:
        y_a, y_b = augment(x), augment(x)        # two distorted views
        z_a, z_b = f(y_a), f(y_b)                # N x D embeddings
        z_a_norm = (z_a - z_a.mean(0)) / z_a.std(0)
        z_b_norm = (z_b - z_b.mean(0)) / z_b.std(0)
        c = mm(z_a_norm.T, z_b_norm) / N         # D x D cross-correlation
        c_diff = (c - eye(D)).pow(2)
        off_diagonal(c_diff).mul_(lambda)        # weight the redundancy term
        loss = c_diff.sum()
    ```

    Details: the projector ("three linear layers, each with 8192 output
    units; the first two followed by batch normalization and ReLU") maps the
    pooled features to z. Each view goes through the networks separately.
    Many devices: C is a statistic of the *global* batch; under
    `tf.distribute` the embeddings are gathered across replicas with
    gradient (the paper's code all-reduces C), under JAX
    `keras.distribution` the step sees the global batch already, so N
    replicas take one device's step.

    Args:
        encoder: any `keras.Model` mapping images `(B, H, W, C)` in [0, 1] to
            features (feature maps are average-pooled).
        projection_dim: D, the width of the embeddings (paper: 8192).
        projection_hidden_dims: hidden widths of the projector (paper:
            `(8192, 8192)`).
        lambda_offdiag: λ, the weight of the redundancy-reduction term
            (paper: 5e-3; its code 0.0051).

    Metrics logged beside the loss: `on_diagonal` (mean C_ii, rises to 1),
    `off_diagonal` (mean |C_ij|, i ≠ j, falls) and `representation_std`.

    Example:

    ```python
    import keras, keras_ssl
    data = keras_ssl.data.load_image_data("digits")
    views = keras_ssl.data.multi_view_dataset(
        data.x_unlabeled, keras_ssl.data.byol_augmentations(16), batch_size=128)
    encoder = keras_ssl.backbones.CIFARResNetBackbone(
        (32, 64, 128), (1, 1, 1), image_shape=(16, 16, 3))
    model = keras_ssl.models.BarlowTwins(encoder, projection_dim=512,
                                         projection_hidden_dims=(512, 512))
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    model.fit(views, epochs=2)
    encoder.save("encoder.keras")
    ```
    """

    def __init__(
        self,
        encoder,
        projection_dim=8192,
        projection_hidden_dims=(8192, 8192),
        lambda_offdiag=5e-3,
        **kwargs,
    ):
        super().__init__(encoder, projection_dim, projection_hidden_dims,
                         **kwargs)
        if not lambda_offdiag >= 0:
            raise ValueError(
                f"BarlowTwins `lambda_offdiag` must be >= 0, got {lambda_offdiag}."
            )
        self.lambda_offdiag = float(lambda_offdiag)
        self.add_metric_trackers("on_diagonal", "off_diagonal")

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        z1, z2 = self.gather_views(*y_pred)
        loss = barlow_twins_loss(z1, z2, self.lambda_offdiag)
        c = cross_correlation(z1, z2)
        d = ops.cast(ops.shape(c)[0], "float32")
        diagonal = ops.diagonal(c)
        self.track(
            on_diagonal=ops.mean(diagonal),
            off_diagonal=(ops.sum(ops.abs(c)) - ops.sum(ops.abs(diagonal)))
            / ops.maximum(d * (d - 1.0), 1.0),
        )
        self.track_representation_std(*y_pred)
        return loss

    def get_config(self):
        config = super().get_config()
        config["lambda_offdiag"] = self.lambda_offdiag
        return config

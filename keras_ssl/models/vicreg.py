"""VICReg: variance-invariance-covariance regularisation."""

import keras

from keras_ssl.losses.vicreg import vicreg_terms
from keras_ssl.models.siamese import SiameseModel


@keras.saving.register_keras_serializable(package="keras_ssl")
class VICReg(SiameseModel):
    """VICReg (Bardes, Ponce & LeCun, 2022).

    "VICReg [...] explicitly avoids the collapse problem with a simple
    regularization term on the variance of the embeddings along each
    dimension individually. VICReg combines the variance term with a
    decorrelation mechanism based on redundancy reduction and covariance
    regularization." The paper's Algorithm 1, which `call` and
    `compute_loss` follow:

    ```
    for x in loader:
        x_a, x_b = augment(x)                        # two random views
        z_a, z_b = f(x_a), f(x_b)                    # N x D embeddings
        sim_loss = mse_loss(z_a, z_b)                # invariance
        std_z_a = sqrt(z_a.var(dim=0) + 1e-04)
        std_z_b = sqrt(z_b.var(dim=0) + 1e-04)
        std_loss = mean(relu(1 - std_z_a)) + mean(relu(1 - std_z_b))
        z_a, z_b = z_a - z_a.mean(dim=0), z_b - z_b.mean(dim=0)
        cov_z_a = (z_a.T @ z_a) / (N - 1)
        cov_z_b = (z_b.T @ z_b) / (N - 1)
        cov_loss = off_diagonal(cov_z_a).pow_(2).sum() / D
                   + off_diagonal(cov_z_b).pow_(2).sum() / D
        loss = lambda * sim_loss + mu * std_loss + nu * cov_loss
    ```

    Details: the expander ("three fully-connected layers of size 8192, the
    first two followed by batch normalization and ReLU") maps the pooled
    features to z; each view goes through the networks separately. Many
    devices: the variance and covariance are statistics of the *global*
    batch; under `tf.distribute` the embeddings are gathered across
    replicas with gradient (the paper's `FullGatherLayer`), under JAX
    `keras.distribution` the step sees the global batch already.

    Args:
        encoder: any `keras.Model` mapping images `(B, H, W, C)` in [0, 1] to
            features (feature maps are average-pooled).
        projection_dim: D, the width of the embeddings (paper: 8192).
        projection_hidden_dims: hidden widths of the expander (paper:
            `(8192, 8192)`).
        invariance_weight, variance_weight, covariance_weight: λ, μ, ν
            (paper: 25, 25, 1).

    Metrics logged beside the loss: the three unweighted terms,
    `invariance`, `variance` and `covariance`, and `representation_std`.

    Example:

    ```python
    import keras, keras_ssl
    data = keras_ssl.data.load_image_data("digits")
    views = keras_ssl.data.multi_view_dataset(
        data.x_unlabeled, keras_ssl.data.byol_augmentations(16), batch_size=128)
    encoder = keras_ssl.backbones.CIFARResNetBackbone(
        (32, 64, 128), (1, 1, 1), image_shape=(16, 16, 3))
    model = keras_ssl.models.VICReg(encoder, projection_dim=512,
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
        invariance_weight=25.0,
        variance_weight=25.0,
        covariance_weight=1.0,
        **kwargs,
    ):
        super().__init__(encoder, projection_dim, projection_hidden_dims,
                         **kwargs)
        for name, value in (
            ("invariance_weight", invariance_weight),
            ("variance_weight", variance_weight),
            ("covariance_weight", covariance_weight),
        ):
            if not value >= 0:
                raise ValueError(f"VICReg `{name}` must be >= 0, got {value}.")
        self.invariance_weight = float(invariance_weight)
        self.variance_weight = float(variance_weight)
        self.covariance_weight = float(covariance_weight)
        self.add_metric_trackers("invariance", "variance", "covariance")

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        z1, z2 = self.gather_views(*y_pred)
        invariance, variance, covariance = vicreg_terms(z1, z2)
        self.track(invariance=invariance, variance=variance,
                   covariance=covariance)
        self.track_representation_std(*y_pred)
        return (
            self.invariance_weight * invariance
            + self.variance_weight * variance
            + self.covariance_weight * covariance
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "invariance_weight": self.invariance_weight,
                "variance_weight": self.variance_weight,
                "covariance_weight": self.covariance_weight,
            }
        )
        return config

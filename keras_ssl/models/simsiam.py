"""SimSiam: simple Siamese representation learning."""

import keras

from keras_ssl.layers.heads import MLPHead
from keras_ssl.losses.simsiam import simsiam_loss
from keras_ssl.models.siamese import SiameseModel


@keras.saving.register_keras_serializable(package="keras_ssl")
class SimSiam(SiameseModel):
    """SimSiam (Chen & He, 2021).

    "SimSiam takes as input two randomly augmented views x1 and x2 from an
    image x. The two views are processed by an encoder network f consisting
    of a backbone and a projection MLP head. [...] A prediction MLP head,
    denoted as h, transforms the output of one view and matches it to the
    other view." No negatives, no momentum encoder: the stop-gradient alone
    prevents collapse. The paper's Algorithm 1, which `call` and
    `compute_loss` follow:

    ```
    for x in loader:
        x1, x2 = aug(x), aug(x)          # random augmentation
        z1, z2 = f(x1), f(x2)            # projections, n-by-d
        p1, p2 = h(z1), h(z2)            # predictions, n-by-d
        L = D(p1, z2)/2 + D(p2, z1)/2    # D(p, z) = −cos(p, z.detach())
        L.backward(); update(f, h)
    ```

    Details: the projector is the paper's three layers with batch norm after
    each, the output's included (`projection_output_batch_norm`; here it
    keeps a learned offset, the paper's has none); the predictor is a
    bottleneck (linear → batch norm → ReLU → linear). Each view goes through
    the networks separately. The loss is per image, so many devices need no
    gather: each replica's mean averages to the global batch's.

    Args:
        encoder: any `keras.Model` mapping images `(B, H, W, C)` in [0, 1] to
            features (feature maps are average-pooled).
        projection_dim: width of z and p (paper: 2048).
        projection_hidden_dims: hidden widths of the projector (paper:
            `(2048, 2048)`).
        prediction_hidden_dims: hidden widths of the predictor h (paper:
            `(512,)`, the bottleneck).

    Metrics logged beside the loss: `representation_std`, the per-dimension
    std of the normalised projections (0 when collapsed; the paper's figure 2
    tracks the same quantity, about 1/sqrt(d) when spread out).

    Example:

    ```python
    import keras, keras_ssl
    data = keras_ssl.data.load_image_data("digits")
    views = keras_ssl.data.multi_view_dataset(
        data.x_unlabeled, keras_ssl.data.SimCLRAugmentation(16), batch_size=128)
    encoder = keras_ssl.backbones.CIFARResNetBackbone(
        (32, 64, 128), (1, 1, 1), image_shape=(16, 16, 3))
    model = keras_ssl.models.SimSiam(encoder, projection_dim=256,
                                     projection_hidden_dims=(256,),
                                     prediction_hidden_dims=(64,))
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    model.fit(views, epochs=2)
    encoder.save("encoder.keras")
    ```
    """

    def __init__(
        self,
        encoder,
        projection_dim=2048,
        projection_hidden_dims=(2048, 2048),
        prediction_hidden_dims=(512,),
        **kwargs,
    ):
        super().__init__(
            encoder, projection_dim, projection_hidden_dims,
            projection_output_batch_norm=True, **kwargs,
        )
        self.prediction_hidden_dims = tuple(int(d) for d in prediction_hidden_dims)
        self.predictor = None

    def build_heads(self):
        self.predictor = MLPHead(
            self.prediction_hidden_dims, self.projection_dim, name="predictor"
        )
        self.predictor.build((None, self.projection_dim))

    def call(self, views, training=False):
        """Returns `{"projections": (z1, z2), "predictions": (p1, p2)}`."""
        z1, z2 = super().call(views, training=training)
        p1, p2 = (self.predictor(z, training=training) for z in (z1, z2))
        return {"projections": (z1, z2), "predictions": (p1, p2)}

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        z1, z2 = y_pred["projections"]
        p1, p2 = y_pred["predictions"]
        self.track_representation_std(z1, z2)
        return simsiam_loss(p1, p2, z1, z2)

    def get_config(self):
        config = super().get_config()
        config["prediction_hidden_dims"] = list(self.prediction_hidden_dims)
        return config

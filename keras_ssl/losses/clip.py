"""CLIP's symmetric contrastive loss over an image-text similarity matrix."""

import math

import keras
from keras import ops

from keras_ssl.losses.contrastive import l2_normalize

#: The logit scale CLIP starts from, log(1 / 0.07).
INITIAL_LOGIT_SCALE = math.log(1 / 0.07)
#: CLIP clips the scale exp(t) at 100 "to prevent scaling the logits by more
#: than 100, which we found necessary to prevent training instability".
MAX_LOGIT_SCALE = 100.0


def clip_logit_scale(log_scale, max_scale=MAX_LOGIT_SCALE):
    """`exp(log_scale)` clipped at `max_scale` (the factor on cosine
    similarities), in float32."""
    log_scale = ops.cast(log_scale, "float32")
    return ops.exp(ops.minimum(log_scale, math.log(max_scale)))


def clip_loss(
    image_embeddings,
    text_embeddings,
    logit_scale,
    all_image_embeddings=None,
    all_text_embeddings=None,
    label_offset=0,
):
    """Symmetric cross-entropy over the N×N image-text similarity matrix.

    CLIP (Radford et al., 2021, figure 3):

    ```
    logits = np.dot(I_e, T_e.T) * np.exp(t)
    labels = np.arange(n)
    loss_i = cross_entropy_loss(logits, labels, axis=0)
    loss_t = cross_entropy_loss(logits, labels, axis=1)
    loss = (loss_i + loss_t) / 2
    ```

    The embeddings are L2-normalised here (again), in float32.

    With a batch split over replicas, each replica passes its own rows
    (`image_embeddings`, `text_embeddings`) and the gathered global batch
    (`all_*`, in replica order) with `label_offset`, the global index of its
    first row: the loss is then the mean over its rows of the global
    problem, and the replicas' mean equals the single-device loss on the
    global batch.

    Args:
        image_embeddings: `(n, d)` image embeddings.
        text_embeddings: `(n, d)` embeddings of the matching captions, in the
            same order.
        logit_scale: the factor `exp(t)` on cosine similarities (a scalar
            tensor or float), e.g. `clip_logit_scale(t)`.
        all_image_embeddings: `(N, d)` images of the global batch, or None
            (then `image_embeddings`).
        all_text_embeddings: `(N, d)` captions of the global batch, or None.
        label_offset: global index of row 0 of the local embeddings.

    Returns:
        The mean loss, a float32 scalar.

    Example:

    >>> import numpy as np
    >>> e = np.eye(4, dtype="float32")
    >>> float(clip_loss(e, e, 10.0)) < float(clip_loss(e, e[::-1], 10.0))
    True
    """
    images = l2_normalize(ops.cast(image_embeddings, "float32"))
    texts = l2_normalize(ops.cast(text_embeddings, "float32"))
    all_images = images if all_image_embeddings is None else l2_normalize(
        ops.cast(all_image_embeddings, "float32")
    )
    all_texts = texts if all_text_embeddings is None else l2_normalize(
        ops.cast(all_text_embeddings, "float32")
    )
    scale = ops.cast(logit_scale, "float32")
    labels = ops.arange(ops.shape(images)[0]) + label_offset
    image_to_text = scale * ops.matmul(images, ops.transpose(all_texts))
    text_to_image = scale * ops.matmul(texts, ops.transpose(all_images))
    loss_i = keras.losses.sparse_categorical_crossentropy(
        labels, image_to_text, from_logits=True
    )
    loss_t = keras.losses.sparse_categorical_crossentropy(
        labels, text_to_image, from_logits=True
    )
    return (ops.mean(loss_i) + ops.mean(loss_t)) / 2.0


@keras.saving.register_keras_serializable(package="keras_ssl")
class CLIPLoss(keras.losses.Loss):
    """`keras.losses.Loss` wrapper of `clip_loss`: `y_pred` is
    `(image_embeddings, text_embeddings)` (`y_true` is ignored).

    Example:

    >>> import numpy as np
    >>> e = np.eye(4, dtype="float32")
    >>> float(CLIPLoss(logit_scale=10.0)(None, (e, e))) < 0.1
    True
    """

    def __init__(self, logit_scale=1 / 0.07, name="clip", **kwargs):
        super().__init__(name=name, **kwargs)
        self.logit_scale = float(logit_scale)

    def __call__(self, y_true, y_pred, sample_weight=None):
        return self.call(y_true, y_pred)

    def call(self, y_true, y_pred):
        image_embeddings, text_embeddings = y_pred
        return clip_loss(image_embeddings, text_embeddings, self.logit_scale)

    def get_config(self):
        config = super().get_config()
        config.update({"logit_scale": self.logit_scale})
        return config

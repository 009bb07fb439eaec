"""Self-supervised objectives as pure `keras.ops` functions (+ Loss wrappers)."""

from keras_ssl.losses.barlow_twins import barlow_twins_loss, cross_correlation
from keras_ssl.losses.byol import (
    byol_loss,
    cosine_similarity,
    negative_cosine_similarity,
    symmetric_byol_loss,
)
from keras_ssl.losses.clip import CLIPLoss, clip_logit_scale, clip_loss
from keras_ssl.losses.contrastive import NTXentLoss, l2_normalize, nt_xent_loss
from keras_ssl.losses.dino import (
    dino_loss,
    teacher_entropy,
    teacher_temperature_schedule,
    update_center,
)
from keras_ssl.losses.mae import mae_loss, normalize_patches
from keras_ssl.losses.masked_tokens import masked_token_accuracy, masked_token_loss
from keras_ssl.losses.moco import infonce_in_batch, infonce_with_queue
from keras_ssl.losses.simsiam import simsiam_loss
from keras_ssl.losses.swav import (
    code_entropy,
    prototype_usage,
    sinkhorn_knopp,
    swapped_prediction_loss,
)
from keras_ssl.losses.vicreg import vicreg_loss, vicreg_terms
from keras_ssl.losses.vq import (
    code_counts,
    codebook_perplexity,
    codebook_usage,
    vq_commitment_loss,
)

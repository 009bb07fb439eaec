"""BYOL recipes: the paper's ImageNet setup, and the small embedded-data one.

    python applications/byol.py                   # embedded digits, CPU, ~10 min
    python applications/byol.py --recipe imagenet --dataset tfds:imagenet2012 \
        --data-dir ~/tensorflow_datasets          # the paper's setup (needs TPUs/GPUs)

The paper's recipe (Grill et al., 2020, section 3.3 and appendix B):
ResNet-50, projector and predictor MLPs 4096 → 256, target decay
τ_base = 0.996 rising to 1 on a cosine schedule, batch 4096, LARS with
learning rate 0.2 × batch / 256 and weight decay 1.5e-6, 10 warmup epochs
then cosine decay over 1000 epochs (300 for the ablations); crops of 8–100%,
SimCLR's colour distortion with the asymmetric blur (1.0 / 0.1) and
solarization (0.0 / 0.2) of its two views.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def digits():
    """The CLI's default: `keras-ssl pretrain byol`."""
    from keras_ssl.training import PretrainConfig

    return PretrainConfig(method="byol")


def imagenet():
    """The paper's ResNet-50 BYOL recipe (batch 4096, LARS, 300 epochs)."""
    from keras_ssl.training import PretrainConfig

    batch_size = 4096
    return PretrainConfig(
        method="byol",
        backbone="resnet50",
        epochs=300,
        batch_size=batch_size,
        optimizer="lars",
        learning_rate=0.2 * batch_size / 256,
        weight_decay=1.5e-6,
        warmup_epochs=10,
        crop_scale=(0.08, 1.0),
        jitter_strength=0.5,  # brightness 0.4, contrast 0.4, saturation 0.2
        grayscale_p=0.2,
        blur_p=1.0,  # > 0: the asymmetric blur of the paper (1.0 / 0.1)
        knn_every=10,
        method_options=dict(
            projection_dim=256,
            projection_hidden_dims=(4096,),
            prediction_hidden_dims=(4096,),
            base_momentum=0.996,
        ),
    )


RECIPES = {"digits": digits, "imagenet": imagenet}

if __name__ == "__main__":
    from run_recipe import main

    main(RECIPES, "byol")

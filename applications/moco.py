"""MoCo v2 recipes: the paper's ImageNet setup, and the small embedded-data one.

    python applications/moco.py                   # embedded digits, CPU, ~10 min
    python applications/moco.py --recipe imagenet --dataset tfds:imagenet2012 \
        --data-dir ~/tensorflow_datasets          # the paper's setup (needs GPUs)

The paper's recipe (Chen et al., 2020, "Improved Baselines with Momentum
Contrastive Learning", and He et al., 2020): ResNet-50, a 2048-wide MLP head
to 128-d, a queue of 65,536 keys, momentum 0.999, InfoNCE with τ = 0.2,
batch 256, SGD with learning rate 0.03, momentum 0.9 and weight decay 1e-4,
cosine decay over 200 epochs; crops of 20–100% resized to 224, colour jitter
(0.4, 0.4, 0.4, 0.1) with probability 0.8, grayscale 0.2, Gaussian blur 0.5.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def digits():
    """The CLI's default: `keras-ssl pretrain moco`."""
    from keras_ssl.training import PretrainConfig

    return PretrainConfig(method="moco")


def imagenet():
    """The paper's ResNet-50 MoCo v2 recipe (batch 256, SGD, 200 epochs)."""
    from keras_ssl.training import PretrainConfig

    return PretrainConfig(
        method="moco",
        backbone="resnet50",
        epochs=200,
        batch_size=256,
        optimizer="sgd",
        learning_rate=0.03,
        weight_decay=1e-4,
        warmup_epochs=0,
        temperature=0.2,
        crop_scale=(0.2, 1.0),
        jitter_strength=0.4 / 0.8,  # SimCLR's s: brightness 0.8·s = 0.4
        grayscale_p=0.2,
        blur_p=0.5,
        knn_every=10,
        method_options=dict(
            projection_dim=128,
            projection_hidden_dims=(2048,),
            queue_size=65536,
            momentum=0.999,
        ),
    )


RECIPES = {"digits": digits, "imagenet": imagenet}

if __name__ == "__main__":
    from run_recipe import main

    main(RECIPES, "moco")

"""SimCLR recipes: the paper's ImageNet setup, and the small embedded-data one.

    python applications/simclr.py                 # embedded digits, CPU, ~10 min
    python applications/simclr.py --recipe imagenet --dataset tfds:imagenet2012 \
        --data-dir ~/tensorflow_datasets          # the paper's setup (needs GPUs)

Both produce a backbone that reloads with `keras.saving.load_model` (and, for
keras-hub backbones, `keras_hub.models.Backbone.from_preset`).

The paper's recipe (Chen et al., 2020, sections 4 and B.9): ResNet-50,
projection MLP with one hidden layer to 128-d, NT-Xent with τ = 0.1, batch
4096, LARS with learning rate 0.3 × batch / 256 (4.8), weight decay 1e-6,
10 warmup epochs then cosine decay, 100–800 epochs; crops of 8–100% resized
to 224, colour jitter of strength 1.0 with probability 0.8, grayscale 0.2,
Gaussian blur 0.5.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def digits():
    """The CLI's default: `keras-ssl pretrain simclr`."""
    from keras_ssl.training import PretrainConfig

    return PretrainConfig(method="simclr")


def imagenet():
    """The paper's ResNet-50 recipe (batch 4096, LARS, 100 epochs)."""
    from keras_ssl.training import PretrainConfig

    batch_size = 4096
    return PretrainConfig(
        method="simclr",
        backbone="resnet50",
        epochs=100,
        batch_size=batch_size,
        optimizer="lars",
        learning_rate=0.3 * batch_size / 256,
        weight_decay=1e-6,
        warmup_epochs=10,
        temperature=0.1,
        projection_dim=128,
        crop_scale=(0.08, 1.0),
        jitter_strength=1.0,
        grayscale_p=0.2,
        blur_p=0.5,
        knn_every=10,
    )


RECIPES = {"digits": digits, "imagenet": imagenet}


if __name__ == "__main__":
    from run_recipe import main

    main(RECIPES, "simclr")

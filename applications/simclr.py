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

import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def recipe(name):
    """The `PretrainConfig` of a recipe: 'digits' (default) or 'imagenet'."""
    from keras_ssl.training import PretrainConfig

    if name == "digits":
        return PretrainConfig(method="simclr")
    if name == "imagenet":
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
    raise ValueError(f"unknown recipe {name!r}: expected 'digits' or 'imagenet'")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="digits", choices=("digits", "imagenet"))
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default="runs/simclr-application")
    args = parser.parse_args()

    from keras_ssl import training
    from keras_ssl.data import load_image_data

    config = recipe(args.recipe)
    if args.epochs:
        config = dataclasses.replace(config, epochs=args.epochs)
    image_size = 224 if args.recipe == "imagenet" else None
    data = load_image_data(args.dataset, image_size=image_size, data_dir=args.data_dir)
    result = training.pretrain(data, config)
    os.makedirs(args.out, exist_ok=True)
    result.encoder.save(os.path.join(args.out, "encoder.keras"))
    if hasattr(result.encoder, "save_to_preset"):
        result.encoder.save_to_preset(os.path.join(args.out, "encoder_preset"))
    print("pretrained:", result.scores, "random init:", result.random_init_scores)


if __name__ == "__main__":
    main()

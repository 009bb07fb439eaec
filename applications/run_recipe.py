"""The command line every recipe in applications/ shares.

Each recipe module defines `RECIPES`, a dict of recipe name → function that
returns a `keras_ssl.training.PretrainConfig` ("digits": the small CPU
recipe on the embedded data, "imagenet": the paper's), and calls
`main(RECIPES, method)`. The run writes the pretrained encoder as a `.keras`
file and, for keras-hub backbones, a preset directory that
`keras_hub.models.Backbone.from_preset` loads.
"""

import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def main(recipes, method, argv=None):
    parser = argparse.ArgumentParser(description=f"{method} pretraining recipes")
    parser.add_argument("--recipe", default="digits", choices=sorted(recipes))
    parser.add_argument("--dataset", default="digits",
                        help="digits, tfds:NAME (with --data-dir) or folder:PATH")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default=f"runs/{method}-application")
    args = parser.parse_args(argv)

    from keras_ssl import training
    from keras_ssl.data import load_image_data

    config = recipes[args.recipe]()
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
    return result

"""CLIP on the embedded captioned digits: zero-shot accuracy against chance,
the untrained model and a linear probe on the same image features, and
image↔text Recall@1/5/10 on the held-out pairs.

    KERAS_BACKEND=tensorflow python benchmarks/clip_quality.py [--epochs 30]

It runs `keras_ssl.image_text.pretrain_clip` with the CLI's defaults
(`keras-ssl pretrain clip` computes the same table) and prints a Markdown
table. The linear probe is fitted on the first half of the held-out images
(labels used) and scored, like the zero-shot classifier (no labels used),
on the second half.
"""

import argparse
import dataclasses
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras

    from keras_ssl.data import load_image_text_data
    from keras_ssl.image_text import ClipConfig, pretrain_clip

    config = ClipConfig(seed=args.seed)
    if args.epochs:
        config = dataclasses.replace(config, epochs=args.epochs)
    data = load_image_text_data("digits", seed=args.seed)
    start = time.perf_counter()
    result = pretrain_clip(data, config, verbose=2)
    rows = [
        ("zero-shot accuracy (no labels)", "zero_shot_accuracy"),
        ("linear probe accuracy", "linear_probe_accuracy"),
        *[(f"{d.replace('_', '→', 1).replace('_', ' ')} R@{k}", f"{d}_R@{k}")
          for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)],
    ]
    print(f"\nCLIP on {data.name}: {len(data.x_train)} pairs, {config.epochs} "
          f"epochs, backend {keras.backend.backend()}, trained "
          f"{result.train_seconds / 60:.1f} min "
          f"(total {(time.perf_counter() - start) / 60:.1f} min)\n")
    print("| score | CLIP | random init |")
    print("|---|---|---|")
    for label, key in rows:
        print(f"| {label} | {result.scores[key]:.3f} | "
              f"{result.random_init_scores[key]:.3f} |")
    print(f"| chance (zero-shot) | {result.scores['chance']:.3f} | |")
    chance_r = {k: k / len(data.x_test) for k in (1, 5, 10)}
    print(f"| chance R@1/5/10 | {chance_r[1]:.3f} / {chance_r[5]:.3f} / "
          f"{chance_r[10]:.3f} | |")
    return result


if __name__ == "__main__":
    main()

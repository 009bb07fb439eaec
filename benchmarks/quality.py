"""Representation quality on the embedded digits: method × (k-NN, linear
probe, fine-tuning).

    python benchmarks/quality.py [--methods simclr,moco,byol,dino,mae,beit]
                                 [--epochs N] [--budget-minutes 10]
                                 [--json out.json]

Each method pretrains its recipe's backbone on the unlabelled pool with the
CLI's default recipe (`keras_ssl.training.PretrainConfig`), on whatever
backend KERAS_BACKEND names (the CLI's default otherwise), within a CPU
budget; the frozen encoder is then scored by weighted k-NN (k=20) and a
linear probe on the labelled split, and, for the recipes that fine-tune
(the masked image models: their features are known to probe worse than
they fine-tune), by end-to-end fine-tuning. Each backbone at random
initialisation and the raw pixels are scored the same way. Prints a
Markdown table (docs/results/vision.md's table is this output).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from keras_ssl.recipes import METHODS  # noqa: E402  (imports no Keras)

os.environ.setdefault("KERAS_BACKEND", METHODS["simclr"].backend)


def main():
    from keras_ssl.data import load_image_data
    from keras_ssl.training import (
        RECIPES,
        PretrainConfig,
        pretrain,
        raw_pixel_scores,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(RECIPES))
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--budget-minutes", type=float, default=10.0,
                        help="training stops at the end of the epoch past this")
    parser.add_argument("--json", default=None, help="also write results here")
    args = parser.parse_args()

    import keras

    data = load_image_data("digits")
    rows, baselines = {}, {}
    for method in args.methods.split(","):
        # Built through the constructor so that --epochs is validated too.
        overrides = {"epochs": args.epochs} if args.epochs is not None else {}
        config = PretrainConfig(method=method, **overrides)
        # One random-init baseline per backbone (and fine-tuning length).
        key = (config.backbone, config.fine_tune_epochs)
        start = time.perf_counter()
        result = pretrain(
            data, config, time_budget=args.budget_minutes * 60, verbose=0,
            baseline=key not in baselines,
        )
        baselines.setdefault(key, result.random_init_scores)
        rows[method] = dict(
            result.scores,
            backbone=config.backbone,
            minutes=(time.perf_counter() - start) / 60,
            epochs=len(result.history["loss"]),
        )
        print(f"{method}: {rows[method]}", file=sys.stderr)
    for (backbone, _), scores in baselines.items():
        rows[f"random init ({backbone})"] = dict(
            scores, backbone=backbone, minutes=0.0, epochs=0
        )
    rows["raw pixels"] = dict(
        raw_pixel_scores(data), backbone="", minutes=0.0, epochs=0
    )

    print(
        f"Embedded cluttered digits ({len(data.x_unlabeled)} unlabelled, "
        f"{len(data.x_train)} train / {len(data.x_test)} test labelled), "
        "backend "
        f"{keras.backend.backend()}, {os.cpu_count()} CPU cores\n"
    )
    print(
        "| representation | backbone | k-NN acc. | linear probe acc. | "
        "best block's probe (block) | fine-tuned acc. | epochs | minutes |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        tuned = row.get("fine_tune_accuracy")
        block = row.get("best_layer_probe_accuracy")
        block = "–" if block is None else f"{block:.3f} ({row['best_layer']})"
        print(
            f"| {name} | {row['backbone']} | {row['knn_accuracy']:.3f} | "
            f"{row['linear_probe_accuracy']:.3f} | "
            f"{block} | "
            f"{'–' if tuned is None else f'{tuned:.3f}'} | {row['epochs']} | "
            f"{row['minutes']:.1f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()

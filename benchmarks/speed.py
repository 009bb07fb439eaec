"""SimCLR training speed per backend, next to the data pipeline's speed.

    python benchmarks/speed.py [--backbone cifar_resnet_small] [--batch-size 256]

For each backend (in its own process, since Keras fixes its backend at
import) it times jit-compiled SimCLR training steps on fixed in-memory views,
so that only the step is measured; then it times the tf.data two-view
augmentation pipeline alone. The pipeline must outrun the best backend by ≥3×
in images/s, or it — not the model — would bound training.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _workers import BACKENDS, run_workers  # noqa: E402


def _worker(args):
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_ssl.training import PretrainConfig, build_backbone, make_method

    keras.utils.set_random_seed(0)
    size = args.image_size
    model = make_method(
        PretrainConfig(backbone=args.backbone),
        build_backbone(args.backbone, (size, size, 3)),
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3),
        jit_compile=keras.backend.backend() != "torch",
    )
    x = np.random.default_rng(0).random((2, args.batch_size, size, size, 3))
    views = tf.data.Dataset.from_tensors(
        ((x[0].astype("float32"), x[1].astype("float32")),)
    ).repeat()
    model.fit(views, steps_per_epoch=args.warmup_steps, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(views, steps_per_epoch=args.steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    print(json.dumps({"steps_per_second": args.steps / seconds}))


def _pipeline_images_per_second(args):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from keras_ssl.data import SimCLRAugmentation
    from keras_ssl.data.views import measure_pipeline_throughput
    from keras_ssl.datasets import load_cluttered_digits

    images = load_cluttered_digits().x_unlabeled
    return measure_pipeline_throughput(
        images, SimCLRAugmentation(args.image_size), batch_size=args.batch_size
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="cifar_resnet_tiny")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)

    rates = {
        backend: result["steps_per_second"]
        for backend, result in run_workers(
            __file__, args, args.backends.split(",")
        ).items()
    }
    pipeline = _pipeline_images_per_second(args)

    print(
        f"SimCLR, {args.backbone}, batch {args.batch_size} × 2 views of "
        f"{args.image_size}×{args.image_size}, {os.cpu_count()} CPU cores"
    )
    print(f"{'':<22}{'steps/s':>10}{'images/s':>12}")
    for backend, rate in rates.items():
        print(f"{backend:<22}{rate:>10.3f}{rate * args.batch_size:>12.0f}")
    best = max(rates, key=rates.get)
    best_images = rates[best] * args.batch_size
    print(f"{'tf.data pipeline':<22}{'':>10}{pipeline:>12.0f}")
    others = sorted(rates.values())
    runner_up = others[-2] if len(others) > 1 else others[-1]
    print(
        f"fastest backend: {best} ({rates[best] / runner_up:.2f}× the next); "
        f"pipeline / fastest step = {pipeline / best_images:.1f}× (must be ≥ 3)"
    )


if __name__ == "__main__":
    main()

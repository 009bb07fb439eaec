"""Throughput of the SimCLR two-view input pipeline on CIFAR-size images.

Prints how many source images per second `multi_view_dataset` delivers, each
with two independently augmented 32x32 views (batch 256), for SimCLR's
CIFAR-10 policy and for its ImageNet-style policy (strength 1.0, blur). The
measurement itself is `keras_ssl.data.views.measure_pipeline_throughput`, so
other benchmarks can reuse it. Runs in about ten seconds:

    python benchmarks/pipeline_throughput.py [--batches 20]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_ssl.data import SimCLRAugmentation  # noqa: E402
from keras_ssl.data.views import measure_pipeline_throughput  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="batches timed")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10_000, 32, 32, 3), dtype=np.uint8)
    policies = {
        "SimCLR CIFAR (s=0.5, no blur)": SimCLRAugmentation(32),
        "SimCLR ImageNet-style (s=1.0, blur 0.5)": SimCLRAugmentation(
            32, jitter_strength=1.0, blur_p=0.5
        ),
    }
    for name, augmentation in policies.items():
        rate = measure_pipeline_throughput(
            images, augmentation, batch_size=args.batch_size, num_batches=args.batches
        )
        print(f"{name}: {rate:,.0f} images/s ({2 * rate:,.0f} views/s)")


if __name__ == "__main__":
    main()

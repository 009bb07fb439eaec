"""Streamed image folders: peak memory against folder size, and the input
pipeline's rate against the training step's.

`memory`: runs the SimCLR paper preset (ResNet-50, 224 px, LARS) from the
CLI on flat folders of generated 224 × 224 JPEGs of each `--counts` size, a
fresh process each, and reports each run's peak resident memory (the
process' `ru_maxrss`, what `summary.json` records):

    python benchmarks/streaming.py memory --counts 2000 20000 --steps 5

`throughput`: images per second of the streaming pipeline (read, decode,
resize, two SimCLR ImageNet views at 224 px: crop 0.08–1, colour 1.0, grey
0.2, blur 0.5; batch 32) next to the training step's images per second on
in-memory views of the same size, for each `--backbones`:

    python benchmarks/streaming.py throughput --backbones cifar_resnet_tiny resnet50

Both measure on whatever the machine has; on a 2-core CPU the pipeline and
the step are timed one after the other, each with both cores.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PAPER_VIEWS = dict(crop_scale=(0.08, 1.0), jitter_strength=1.0, grayscale_p=0.2,
                   blur_p=0.5)


def _folder(root, count):
    from keras_ssl.datasets.image_folder import write_image_folder

    folder = pathlib.Path(root) / f"jpeg224_{count}"
    start = time.perf_counter()
    write_image_folder(folder, count, size=224)
    print(f"{folder}: {count} JPEGs ready ({time.perf_counter() - start:.0f} s)",
          flush=True)
    return folder


def memory(args):
    rows = []
    for count in args.counts:
        folder = _folder(args.root, count)
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-m", "keras_ssl.cli", "pretrain", "simclr",
                       "--preset", "paper", "--dataset", f"folder:{folder}",
                       "--set", f"batch_size={args.batch_size}",
                       "--steps", str(args.steps), "--out", out, "--quiet"]
            env = {**os.environ, "KERAS_BACKEND": args.backend}
            start = time.perf_counter()
            subprocess.run(command, check=True, env=env)
            seconds = time.perf_counter() - start
            summary = json.loads((pathlib.Path(out) / "summary.json").read_text())
        rows.append((count, summary["peak_memory_gib"], summary["train_seconds"], seconds))
        print(f"{count} images: peak {summary['peak_memory_gib']:.2f} GiB, "
              f"train {summary['train_seconds']:.0f} s, total {seconds:.0f} s", flush=True)
    base = rows[0][1]
    print(f"\n| images | peak memory (GiB) | vs {rows[0][0]} | train (s) | total (s) |")
    print("|---:|---:|---:|---:|---:|")
    for count, peak, train, total in rows:
        print(f"| {count:,} | {peak:.2f} | {100 * (peak - base) / base:+.1f}% | "
              f"{train:.0f} | {total:.0f} |")


def throughput(args):
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_ssl.data import SimCLRAugmentation, multi_view_dataset
    from keras_ssl.data.image_files import stream_image_data
    from keras_ssl.data.views import measure_pipeline_throughput
    from keras_ssl.recipes import make_config
    from keras_ssl.training import build_backbone, make_method, make_vision_optimizer

    folder = _folder(args.root, args.count)
    data = stream_image_data(f"folder:{folder}", image_size=224)
    augmentation = SimCLRAugmentation(224, **PAPER_VIEWS)
    pipeline = measure_pipeline_throughput(
        data.unlabeled, augmentation, batch_size=args.batch_size,
        num_batches=args.batches, warmup_batches=3)
    print(f"pipeline: {pipeline:.1f} images/s (two 224-px views each; batch "
          f"{args.batch_size}, backend {keras.backend.backend()})", flush=True)
    views = next(iter(multi_view_dataset(data.unlabeled, augmentation,
                                         batch_size=args.batch_size, seed=0,
                                         repeat=True)))
    rows = [("streaming pipeline", pipeline, None)]
    for name in args.backbones:
        config = make_config("simclr", "paper",
                             {"backbone": name, "batch_size": args.batch_size})
        model = make_method(config, build_backbone(name, (224, 224, 3)), 100)
        model.compile(optimizer=make_vision_optimizer(config, 100))
        batches = tf.data.Dataset.from_tensors(views).repeat()
        model.fit(batches, steps_per_epoch=args.warmup_steps, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(batches, steps_per_epoch=args.steps, epochs=1, verbose=0)
        rate = args.steps * args.batch_size / (time.perf_counter() - start)
        rows.append((f"SimCLR step, {name}", rate, pipeline / rate))
        print(f"{name}: {rate:.1f} images/s per training step; the pipeline is "
              f"{pipeline / rate:.1f}x faster", flush=True)
        del model
        keras.backend.clear_session()
        np.random.seed(0)
    print("\n| what | images/s | pipeline ÷ step |\n|---|---:|---:|")
    for what, rate, ratio in rows:
        print(f"| {what} | {rate:.1f} | {'' if ratio is None else f'{ratio:.1f}×'} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.join(tempfile.gettempdir(),
                                                       "keras_ssl_streaming"),
                        help="where the generated folders are kept between runs")
    commands = parser.add_subparsers(dest="command", required=True)
    m = commands.add_parser("memory", help="peak memory against folder size")
    m.add_argument("--counts", type=int, nargs="+", default=[2000, 20000])
    m.add_argument("--steps", type=int, default=5)
    m.add_argument("--batch-size", type=int, default=32)
    m.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    t = commands.add_parser("throughput", help="pipeline rate against step rate")
    t.add_argument("--count", type=int, default=2000)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--batches", type=int, default=20, help="pipeline batches timed")
    t.add_argument("--steps", type=int, default=5, help="training steps timed")
    t.add_argument("--warmup-steps", type=int, default=2)
    t.add_argument("--backbones", nargs="+", default=["cifar_resnet_tiny", "resnet50"])
    args = parser.parse_args()
    (memory if args.command == "memory" else throughput)(args)


if __name__ == "__main__":
    main()

"""CPU utilisation and epoch time of pre-training, per backend and method.

    python benchmarks/utilisation.py [--methods simclr] [--epochs 3]
        [--backends tensorflow,jax,torch] [--cli simclr]
        [--cli-backends tensorflow] [--json out.json]

For each backend (each in its own process) and method it runs
`keras_ssl.training.pretrain` with the method's embedded preset for
`--epochs` epochs, with a callback that reads the process's CPU time
(`getrusage`: user + system, every thread) and the wall clock at each
epoch's start and end. It reports the median epoch over epochs 2.. (the
first compiles) and the CPU use during those epochs in % of one core (200%
= both cores of a 2-core machine busy), then the whole process's.

`--cli METHODS` also runs the whole command `keras-ssl pretrain METHOD` with
its full preset (every epoch, the k-NN checks, the evaluation, the files) as
a child process under each of `--cli-backends` and reports its wall time
and CPU use the way `/usr/bin/time` does (`os.wait4`).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _workers import BACKENDS, run_workers  # noqa: E402


def cpu_seconds():
    """User + system CPU seconds of this process so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker(args):
    import keras

    from keras_ssl.data import load_image_data
    from keras_ssl.training import PretrainConfig, pretrain

    class EpochMeter(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = (time.perf_counter(), cpu_seconds())

        def on_epoch_end(self, epoch, logs=None):
            wall, cpu = time.perf_counter(), cpu_seconds()
            self.epochs.append((wall - self._start[0], cpu - self._start[1]))

    process_start = (time.perf_counter(), cpu_seconds())
    rows = {}
    data = load_image_data("digits")
    for method in args.methods.split(","):
        # knn_every past the last epoch: only the training loop is timed.
        config = PretrainConfig(method=method, epochs=args.epochs,
                                knn_every=args.epochs + 1)
        meter = EpochMeter()
        pretrain(data, config, callbacks=[meter], verbose=0, baseline=False)
        steady = meter.epochs[1:] or meter.epochs
        rows[method] = dict(
            epoch_seconds=statistics.median(w for w, _ in steady),
            cpu_percent=100 * sum(c for _, c in steady) / sum(w for w, _ in steady),
            steps_per_epoch=len(data.x_unlabeled) // config.batch_size,
            batch_size=config.batch_size,
        )
    wall = time.perf_counter() - process_start[0]
    rows["process"] = dict(seconds=wall,
                           cpu_percent=100 * (cpu_seconds() - process_start[1]) / wall)
    print(json.dumps(rows))


def run_cli(method, backend):
    """Wall seconds and CPU % of `keras-ssl pretrain METHOD` under `backend`."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "keras_ssl.cli", "pretrain", method,
                   "--backend", backend, "--quiet", "--out", out]
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(command)} failed")
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
    return dict(seconds=wall, cpu_percent=100 * (usage.ru_utime + usage.ru_stime) / wall,
                train_seconds=summary["train_seconds"],
                knn_accuracy=summary["scores"][method]["knn_accuracy"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="simclr")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--cli", default="",
                        help="methods whose whole command is also timed")
    parser.add_argument("--cli-backends", default="tensorflow")
    parser.add_argument("--json", default=None, help="also write results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)

    backends = args.backends.split(",")
    results = run_workers(__file__, args, backends,
                          exclude=("worker", "backends", "cli", "cli_backends",
                                   "json"))
    print(f"{os.cpu_count()} CPU cores; CPU % of one core (100 × cores = all busy)\n")
    print("| backend | method | batch × steps | epoch s | CPU % in training | "
          "CPU % of the process |")
    print("|---|---|---|---:|---:|---:|")
    for backend, rows in results.items():
        process = rows.pop("process")
        for method, row in rows.items():
            print(f"| {backend} | {method} | {row['batch_size']} × "
                  f"{row['steps_per_epoch']} | {row['epoch_seconds']:.2f} | "
                  f"{row['cpu_percent']:.0f} | {process['cpu_percent']:.0f} |")
    if args.cli:
        print("\n| backend | command | wall s | training s | CPU % | k-NN |")
        print("|---|---|---:|---:|---:|---:|")
        for backend in args.cli_backends.split(","):
            for method in args.cli.split(","):
                row = run_cli(method, backend)
                results.setdefault(backend, {})[f"cli:{method}"] = row
                print(f"| {backend} | keras-ssl pretrain {method} | "
                      f"{row['seconds']:.0f} | {row['train_seconds']:.0f} | "
                      f"{row['cpu_percent']:.0f} | {row['knn_accuracy']:.3f} |",
                      flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

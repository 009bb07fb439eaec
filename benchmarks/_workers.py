"""Runs a benchmark's worker once per Keras backend, each in its own process.

Keras fixes its backend at import, so a benchmark that compares backends
re-runs itself with `--worker` under each `KERAS_BACKEND`; the worker prints
one JSON line last, which is returned here.
"""

import json
import os
import subprocess
import sys

BACKENDS = ("tensorflow", "jax", "torch")


def run_workers(script, args, backends, exclude=("worker", "backends")):
    """`{backend: the JSON the worker printed}` for each backend.

    Args:
        script: the benchmark's file (`__file__`), run with `--worker`.
        args: its parsed `argparse` namespace, passed on as `--name=value`.
        backends: an iterable of backend names.
        exclude: argument names not passed on.
    """
    results = {}
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        command = [sys.executable, script, "--worker"] + [
            f"--{k.replace('_', '-')}={v}"
            for k, v in vars(args).items()
            if k not in exclude
        ]
        out = subprocess.run(command, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{backend} worker failed")
        results[backend] = json.loads(out.stdout.strip().splitlines()[-1])
    return results

"""Kill a `keras-ssl pretrain` run again and again; it must end as if never killed.

    python benchmarks/kill_resume.py                       # 8 kills, SimCLR, torch
    python benchmarks/kill_resume.py --kills 12 --backend tensorflow --json out.json

Runs the command once uninterrupted, then again with SIGKILL at chosen moments
(`KERAS_SSL_FAULT`, `keras_ssl.recipes.backups.fault_point`): between steps at
random, inside backup writes, while the outputs are written and moved into
place, and before the backup is deleted; each kill is followed by a rerun with
`--resume`, until a rerun finishes. Reports, per kill, the moment, the backup
step the killed process started from and the one it left, the optimizer steps
it trained that the next run trains again ("steps lost"), and at the end
whether the final encoder weights and summary scores equal the uninterrupted
run's.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

MOMENTS = ("train.step", "backup.files", "backup.sealed", "backup.renamed")
LATE = ("outputs.written", "outputs.publish", "outputs.published")


def _backup_step(out):
    from keras_ssl.recipes import backups

    folder = backups.newest_backup(str(out / "backup"), on_message=lambda m: None)
    return backups.read_metadata(folder)["step"] if folder else 0


def _run(command, out, backend, fault=None, resume=False):
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.pop("KERAS_SSL_FAULT", None)
    if fault:
        env["KERAS_SSL_FAULT"] = fault
    args = [*command, "--out", str(out), *(["--resume"] if resume else [])]
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    return done, time.perf_counter() - start


def _weights(out):
    import keras

    import keras_ssl

    encoder = keras_ssl.load_model(out / "encoder.keras")
    return [keras.ops.convert_to_numpy(w) for w in encoder.weights]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--method", default="simclr")
    parser.add_argument("--args", default="--max-examples 512 --batch-size 64 "
                        "--epochs 8 --knn-every 4 --backup-every 5",
                        help="the run's flags (8 steps per epoch: 64 steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    rng = random.Random(args.seed)
    every = 5
    flags = args.args.split()
    if "--backup-every" in flags:
        every = int(flags[flags.index("--backup-every") + 1])
    command = [sys.executable, "-m", "keras_ssl.cli", "pretrain", args.method,
               "--quiet", *flags]
    work = tempfile.mkdtemp(prefix="kill_resume_")
    from pathlib import Path

    reference, killed = Path(work) / "uninterrupted", Path(work) / "killed"
    done, uninterrupted_seconds = _run(command, reference, args.backend)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])

    rows, seconds = [], 0.0
    for i in range(args.kills):
        late = i >= args.kills - len(LATE)
        moment = LATE[i - (args.kills - len(LATE))] if late else rng.choice(MOMENTS)
        passage = 1 if late else rng.randint(1, 2 if moment != "train.step" else 6)
        start_step = _backup_step(killed)
        done, took = _run(command, killed, args.backend, f"{moment}:{passage}",
                          resume=i > 0)
        seconds += took
        if done.returncode != -signal.SIGKILL:
            raise SystemExit(f"kill {i} ({moment}:{passage}) did not strike: "
                             f"exit {done.returncode}\n{done.stderr[-3000:]}")
        left = _backup_step(killed)
        if moment == "train.step":
            reached = start_step + passage
        elif moment.startswith("backup"):
            reached = start_step + passage * every
        else:
            reached = left  # training was over
        rows.append(dict(kill=i + 1, moment=f"{moment}:{passage}",
                         started_at_step=start_step, backup_left_at_step=left,
                         steps_lost=max(0, reached - left), seconds=round(took, 1)))
        print(rows[-1], file=sys.stderr)
    reruns = 0
    while True:
        reruns += 1
        done, took = _run(command, killed, args.backend, resume=True)
        seconds += took
        if done.returncode == 0:
            break
        if reruns > 3:
            raise SystemExit(done.stderr[-3000:])
    expected = json.loads((reference / "summary.json").read_text())["scores"]
    got = json.loads((killed / "summary.json").read_text())["scores"]
    scores_equal = all(
        abs(got[row][k] - v) <= 1e-6 for row, vals in expected.items()
        for k, v in vals.items())
    diffs = [float(np.max(np.abs(a - b)))
             for a, b in zip(_weights(reference), _weights(killed))]
    result = dict(
        method=args.method, backend=args.backend, flags=args.args,
        kills=len(rows), survived=scores_equal and max(diffs) <= 1e-5,
        scores_equal=scores_equal, max_weight_difference=max(diffs),
        steps_lost_per_kill=round(float(np.mean([r["steps_lost"] for r in rows])), 2),
        uninterrupted_seconds=round(uninterrupted_seconds, 1),
        killed_and_resumed_seconds=round(seconds, 1), rows=rows,
    )
    print("\n| kill | moment | started at step | backup left at step | steps lost |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kill']} | {r['moment']} | {r['started_at_step']} | "
              f"{r['backup_left_at_step']} | {r['steps_lost']} |")
    print(f"\n{len(rows)} kills; final weights equal to the uninterrupted run's: "
          f"{max(diffs) <= 1e-5} (max difference {max(diffs):.2e}); scores "
          f"equal: {scores_equal}; {result['steps_lost_per_kill']} steps lost "
          f"per kill; {seconds:.0f} s killed and resumed against "
          f"{uninterrupted_seconds:.0f} s uninterrupted ({args.backend})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if result["survived"] else 1


if __name__ == "__main__":
    sys.exit(main())

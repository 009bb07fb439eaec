"""Every paper preset, end to end, on generated local data of its real input
size: `keras-ssl pretrain METHOD --preset paper` with overrides for the
batch size and the number of steps only, as a user with a GPU would start it.

Data, generated under `--root` and kept between runs:
- vision methods: a flat folder of 224 × 224 JPEGs (`--dataset folder:`);
- CLIP: 224 × 224 JPEGs with a caption file each;
- language methods: a folder of `.txt` files (the embedded corpus' text);
- wav2vec 2.0: a folder of 16 kHz `.wav` files (2–6 s of tones and noise).

    python benchmarks/paper_presets.py [--methods simclr mae ...] [--steps 2]

Prints one row per method (status, seconds, peak memory, last loss) and
writes the table to `--table` when given.
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

VISION = ("simclr", "moco", "byol", "dino", "mae", "beit")
LANGUAGE = ("bert", "roberta", "gpt", "t5")
BATCH = {"dino": 4, "clip": 8, "wav2vec2": 4, **{m: 4 for m in LANGUAGE}}


def _images(root):
    from keras_ssl.datasets.image_folder import write_image_folder

    folder = root / "jpeg224"
    write_image_folder(folder, 64, size=224)
    return f"folder:{folder}"


def _captioned(root):
    from keras_ssl.datasets.image_folder import write_image_folder

    folder = root / "captioned224"
    words = ["red", "green", "blue", "small", "large", "round", "square", "bright"]
    for i, path in enumerate(write_image_folder(folder, 64, size=224)):
        caption = pathlib.Path(path).with_suffix(".txt")
        if not caption.exists():
            caption.write_text(f"a {words[i % 8]} {words[(i // 8) % 8]} scene\n")
    return f"folder:{folder}"


def _texts(root):
    from keras_ssl.language import embedded_corpus

    folder = root / "texts"
    if not folder.exists():
        tmp = root / "texts.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        for i, document in enumerate(embedded_corpus().documents[:400]):
            (tmp / f"doc_{i:04d}.txt").write_text(document)
        tmp.rename(folder)
    return str(folder)


def _audio(root):
    import numpy as np
    from scipy.io import wavfile

    folder = root / "wav16k"
    if not folder.exists():
        tmp = root / "wav16k.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(24):
            seconds = 2 + 4 * rng.random()
            t = np.arange(int(16000 * seconds)) / 16000
            pitch = 120 + 80 * rng.random()
            wave = 0.3 * np.sin(2 * np.pi * pitch * t * (1 + 0.1 * np.sin(3 * t)))
            wave += 0.05 * rng.normal(size=t.shape)
            wavfile.write(tmp / f"utt_{i:03d}.wav", 16000, (wave * 32767).astype(np.int16))
            (tmp / f"utt_{i:03d}.txt").write_text("a tone")
        tmp.rename(folder)
    return f"folder:{folder}"


def dataset_for(method, root):
    if method in VISION:
        return _images(root)
    if method == "clip":
        return _captioned(root)
    if method in LANGUAGE:
        return _texts(root)
    return _audio(root)


def run(method, root, steps, backend, extra=()):
    dataset = dataset_for(method, root)
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "keras_ssl.cli", "pretrain", method,
                   "--preset", "paper", "--dataset", dataset,
                   "--set", f"batch_size={BATCH.get(method, 8)}",
                   "--steps", str(steps), "--out", out, "--quiet",
                   *[arg for setting in extra for arg in ("--set", setting)]]
        env = dict(os.environ, **({"KERAS_BACKEND": backend} if backend else {}))
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            error = (done.stderr.strip().splitlines() or ["?"])[-1]
            return dict(method=method, status=f"failed: {error[:120]}", seconds=seconds)
        summary = json.loads((pathlib.Path(out) / "summary.json").read_text())
        history = json.loads((pathlib.Path(out) / "history.json").read_text())["history"]
    loss = history.get("loss", [None])[-1]
    return dict(method=method, status="ok", seconds=seconds,
                backend=summary["backend"], dataset=dataset.split("/")[-1],
                memory=summary["peak_memory_gib"], loss=loss)


def main():
    from keras_ssl.recipes import METHODS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--backend", default=None,
                        help="KERAS_BACKEND (default: each method's CLI default)")
    parser.add_argument("--root", default=os.path.join(tempfile.gettempdir(),
                                                       "keras_ssl_paper_data"))
    parser.add_argument("--table", default=None, help="also write the table here")
    parser.add_argument("--set", action="append", default=[], metavar="METHOD:KEY=VALUE",
                        help="one more override for one method (e.g. "
                        "beit:method_options.tokenizer_epochs=1)")
    args = parser.parse_args()
    root = pathlib.Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["| method | status | backend | batch | steps | seconds | peak memory (GiB) "
             "| last loss |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for method in args.methods:
        extra = [s.split(":", 1)[1] for s in args.set if s.split(":", 1)[0] == method]
        row = run(method, root, args.steps, args.backend, extra)
        loss = row.get("loss")
        status = row["status"] + "".join(f" ({e})" for e in extra)
        line = (f"| {method} | {status} | {row.get('backend', '')} | "
                f"{BATCH.get(method, 8)} | {args.steps} | {row['seconds']:.0f} | "
                f"{row.get('memory', float('nan')):.2f} | "
                f"{'' if loss is None else f'{loss:.3f}'} |")
        lines.append(line)
        print(line, flush=True)
    print("\n".join(lines))
    if args.table:
        pathlib.Path(args.table).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

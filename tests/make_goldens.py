"""Writes tests/data/goldens.json: each method's loss on fixed inputs.

Run under one backend (`KERAS_BACKEND=tensorflow python tests/make_goldens.py`);
the harness then checks every backend against these numbers, which shows that
the three backends compute the same loss from the same weights.
"""

import json
import sys
import pathlib

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import keras  # noqa: E402

from harness import CASES, GOLDENS, deterministic_loss, load_goldens  # noqa: E402
from keras_ssl.datasets import load_cluttered_digits  # noqa: E402

if __name__ == "__main__":
    images = load_cluttered_digits().x_unlabeled
    goldens = load_goldens()
    names = sys.argv[1:] or [case.name for case in CASES]
    for case in CASES:
        if case.name in names:
            goldens[case.name] = deterministic_loss(case, images)
            print(f"{case.name}: {goldens[case.name]:.6f} ({keras.backend.backend()})")
    GOLDENS.parent.mkdir(exist_ok=True)
    GOLDENS.write_text(json.dumps(goldens, indent=2, sort_keys=True) + "\n")

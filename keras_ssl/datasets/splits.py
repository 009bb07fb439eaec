"""Index splits shared by the embedded datasets and the image loaders."""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_split"]


def stratified_split(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Splits the indices of `labels` per class into `(train, test)`.

    Each class puts `len(class) * test_fraction` of its members, rounded
    half up, on the test side, clipped so that a class with two or more
    members keeps at least one on each side (a class of one goes to train).
    Both parts come back shuffled by `rng`.
    """
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        # Round half up; a class with two or more members keeps one on each side.
        num_test = min(max(int(np.floor(len(members) * test_fraction + 0.5)), 1), len(members) - 1)
        test.append(members[:num_test])
        train.append(members[num_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))

"""Settings every tutorial shares: the step budget, how it is split into
logged epochs, and the output folder."""
import os

def steps(default):
    """Training steps: $KERAS_SSL_TUTORIAL_STEPS (the tests set a tiny one) or `default`."""
    return int(os.environ.get("KERAS_SSL_TUTORIAL_STEPS", default))

def split_steps(total, points):
    """`(epochs, steps_per_epoch)` that log `points` loss values (fewer when
    `total` is smaller) over `total` steps: `fit` runs their product, which is
    `total` rounded down to a multiple of the epochs.

    >>> split_steps(200, 20), split_steps(2, 20), split_steps(45, 10)
    ((20, 10), (2, 1), (10, 4))
    """
    epochs = max(1, min(int(points), int(total)))
    return epochs, max(1, int(total) // epochs)

def out_dir(name):
    """Where a tutorial writes its pictures: $KERAS_SSL_TUTORIAL_OUT/<name> or runs/tutorials/<name>."""
    path = os.path.join(os.environ.get("KERAS_SSL_TUTORIAL_OUT", os.path.join("runs", "tutorials")), name)
    os.makedirs(path, exist_ok=True)
    return path

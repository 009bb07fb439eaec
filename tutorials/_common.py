"""Settings every tutorial shares: the step budget and the output folder."""
import os

def steps(default):
    """Training steps: $KERAS_SSL_TUTORIAL_STEPS (the tests set a tiny one) or `default`."""
    return int(os.environ.get("KERAS_SSL_TUTORIAL_STEPS", default))

def out_dir(name):
    """Where a tutorial writes its pictures: $KERAS_SSL_TUTORIAL_OUT/<name> or runs/tutorials/<name>."""
    path = os.path.join(os.environ.get("KERAS_SSL_TUTORIAL_OUT", os.path.join("runs", "tutorials")), name)
    os.makedirs(path, exist_ok=True)
    return path

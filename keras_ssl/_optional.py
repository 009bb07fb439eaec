"""Optional dependencies: the one place that imports them, so a missing one
fails with the same clear message naming the extra that installs it.

>>> require("json", "tfds", "this example").__name__
'json'
"""

from __future__ import annotations

import importlib
import importlib.util

#: The pip distribution of each optional module (when its name differs).
DISTRIBUTIONS = {
    "tensorflow_datasets": "tensorflow-datasets",
    "espeakng_loader": "espeakng-loader",
}


class MissingDependency(ModuleNotFoundError):
    """An optional dependency is not installed; the message says which
    extra installs it (`pip install "keras-ssl[EXTRA]"`)."""


def require(module: str, extra: str, what: str, load: bool = True):
    """Imports and returns `module`, or raises `MissingDependency`.

    Args:
        module: the module to import, e.g. `"tensorflow_datasets"`.
        extra: the keras-ssl extra that installs it, e.g. `"tfds"`.
        what: what needs it, the start of the message, e.g.
            `"TFDS datasets ('tfds:NAME')"`.
        load: False only checks that the module is installed, without
            importing it (e.g. a Keras backend before Keras is imported),
            and returns None.

    Only the module's own absence is turned into `MissingDependency`: an
    installed module that fails to import (a broken dependency of its own)
    raises its original error.
    """
    top = module.split(".")[0]
    try:
        if not load:
            if importlib.util.find_spec(top) is None:
                raise ModuleNotFoundError(f"No module named {top!r}", name=top)
            return None
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name not in (module, top):
            raise
        package = DISTRIBUTIONS.get(top, top)
        raise MissingDependency(
            f"{what} needs the {package} package: "
            f'pip install "keras-ssl[{extra}]" (or pip install {package})',
            name=module,
        ) from None

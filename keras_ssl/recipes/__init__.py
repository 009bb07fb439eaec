"""The recipe engine: every method's presets, one `run`, one output layout.

    METHODS                 the one list of methods (name → family, model)
    presets                 the presets as data: `embedded` and `paper` per method
    make_config(m, p, o)    the config of method `m`, preset `p`, overrides `o`
    run(m, preset, data)    trains and measures: a `RunResult`
    save(result, out)       writes the same layout for every method

`METHODS`, `presets` and `make_config` import no framework (the CLI checks
a whole config before Keras picks its backend); `run` and `save` import
Keras on first use.

Example:

```python
from keras_ssl import recipes
result = recipes.run("simclr", overrides={"epochs": 2, "knn_every": 1})
print(result.scores)                 # k-NN and linear probe, vs random init
recipes.save(result, "runs/simclr")  # encoder.keras, encoder_preset/, ...
```
"""

from __future__ import annotations

import dataclasses

from keras_ssl.recipes import presets
from keras_ssl.recipes.configs import CONFIGS
from keras_ssl.recipes.methods import (
    DEFAULT_DATA,
    FAMILIES,
    FINETUNE_TASKS,
    METHODS,
    Method,
    get_method,
    methods_of,
)

_ENGINE_NAMES = ("run", "save", "RunResult", "load_data", "OUTPUT_FILES")


def config_class(method):
    """The config dataclass of `method`'s family."""
    return CONFIGS[get_method(method).family]


def settable(method, preset="embedded"):
    """The keys `make_config` takes for `method`: its config's fields and
    (vision) the method's constructor options named in the preset."""
    fields = [f.name for f in dataclasses.fields(config_class(method))
              if f.name != "method"]
    options = presets.preset_values(method, preset).get("method_options", {})
    return fields + [k for k in options if k not in fields]


def make_config(method, preset="embedded", overrides=None):
    """The config of `method` with preset `preset` and `overrides`.

    `overrides` maps config fields (`"epochs"`, ...) to values; for the
    vision methods a key of the preset's `method_options` (e.g. MoCo's
    `"queue_size"`) or `"method_options.KEY"` sets a constructor option.
    An unknown key is a `ValueError` that lists the keys the method takes.
    """
    cls = config_class(method)
    values = presets.preset_values(method, preset)
    fields = {f.name for f in dataclasses.fields(cls)}
    if "method" in fields:
        values["method"] = method
    options = values.get("method_options")
    for key, value in (overrides or {}).items():
        name = key.replace("-", "_")
        if name.startswith("method_options.") and options is not None:
            options[name.split(".", 1)[1]] = value
        elif name in fields and name != "method":
            values[name] = value
        elif options is not None and name in options:
            options[name] = value
        else:
            raise ValueError(
                f"{method} has no setting {key!r}; it takes: "
                f"{', '.join(settable(method, preset))}"
            )
    return cls(**values)


def describe(method, preset="embedded"):
    """The resolved values of a preset, as a flat dict (for printing)."""
    config = make_config(method, preset)
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def __getattr__(name):
    if name in _ENGINE_NAMES:
        from keras_ssl.recipes import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'keras_ssl.recipes' has no attribute {name!r}")


__all__ = [
    "DEFAULT_DATA", "FAMILIES", "FINETUNE_TASKS", "METHODS", "Method", "config_class",
    "describe", "get_method", "make_config", "methods_of", "presets",
    "settable", *_ENGINE_NAMES,
]

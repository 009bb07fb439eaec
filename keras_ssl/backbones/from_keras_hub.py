"""Initialise a keras-ssl vision backbone from a keras-hub preset on disk.

`initialize_from_preset(backbone, preset_dir)` copies the weights of a preset
directory (`config.json` + `model.weights.h5`, as written by keras-hub's
`save_to_preset` or unpacked from a Kaggle download) into a backbone that
keras-ssl built, when the two architectures match; nothing is downloaded.

- keras-hub `ViTBackbone` → keras-ssl `ViTBackbone`: the layers differ, the
  network is the same (pre-norm blocks, exact GELU, biases), so the weights
  are mapped one by one: the patch convolution, the class token, the
  position table, every block's layer norms, attention projections (the same
  `MultiHeadAttention` shapes on both sides) and MLP, and the final norm.
  keras-hub adds a learned position to the class token too; keras-ssl's class
  token has none, so that position is folded into the token (the sum is what
  both networks see). A backbone with `position_embedding="learned"`
  receives the patch positions (resized bicubically, as MAE and timm do, when
  the patch grid differs) and then computes exactly what the preset computes;
  one with the default fixed sin-cos positions receives everything else, and
  the report says that the positions were not copied.
- A preset of the backbone's own class (keras-hub's `ResNetBackbone`, which
  keras-ssl's "resnet18"/"resnet50" are; keras-ssl's exported
  `CIFARResNetBackbone` or `ViTBackbone`): every weight, in order, when the
  configs agree on everything but the image shape and the pooling.

A preset's image converter (e.g. ImageNet mean/std normalisation) is not
applied: keras-ssl feeds images in [0, 1] and the report says so.

Example (a random keras-hub ViT saved to a folder stands in for a real one):

```python
import tempfile
import keras_hub
import numpy as np
from keras_ssl.backbones import ViTBackbone, initialize_from_preset

preset = tempfile.mkdtemp()
keras_hub.models.ViTBackbone(
    image_shape=(32, 32, 3), patch_size=8, num_layers=1, num_heads=2,
    hidden_dim=16, mlp_dim=64,
).save_to_preset(preset)
backbone = ViTBackbone(
    image_shape=(32, 32, 3), patch_size=8, hidden_dim=16, num_layers=1,
    num_heads=2, mlp_ratio=4, pooling=None, position_embedding="learned",
)
print(initialize_from_preset(backbone, preset))
```

From the command line, `keras-ssl pretrain mae --preset paper --init-preset
DIR` builds the preset's backbone (`vit_base16`) with learned positions and
starts from DIR's weights (`keras_ssl.training.build_backbone`).
"""

import dataclasses
import inspect
import json
import math
import os

import keras
import numpy as np

KERAS_HUB_VIT = "keras_hub>ViTBackbone"
_FILES = ("config.json", "model.weights.h5")
# Config entries that do not change a backbone's weights.
_IGNORED = ("name", "trainable", "dtype", "image_shape", "pooling", "data_format")


@dataclasses.dataclass
class PresetInitReport:
    """What `initialize_from_preset` did: `str()` reads as a short report."""

    preset: str
    source: str  # the preset's class, e.g. "keras_hub>ViTBackbone"
    copied: list
    not_copied: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)

    def __str__(self):
        lines = [f"initialised from {self.source} preset {self.preset}"]
        lines += [f"  copied: {item}" for item in self.copied]
        lines += [f"  not copied: {item}" for item in self.not_copied]
        lines += [f"  note: {item}" for item in self.notes]
        return "\n".join(lines)


def read_preset_config(preset_dir):
    """The backbone entry (`config.json`) of a preset directory on disk.

    Raises:
        FileNotFoundError: if `preset_dir` is not a directory with
            `config.json` and `model.weights.h5` (handles such as
            `kaggle://...` are refused: nothing is downloaded).
    """
    preset_dir = os.fspath(preset_dir)
    missing = [f for f in _FILES if not os.path.isfile(os.path.join(preset_dir, f))]
    if not os.path.isdir(preset_dir):
        missing = ["the directory"]
    if missing:
        raise FileNotFoundError(
            f"{preset_dir!r} is not a keras-hub preset directory on disk "
            f"(missing: {', '.join(missing)}). Give a folder written by "
            "`save_to_preset` or an unpacked Kaggle preset; keras-ssl "
            "downloads nothing."
        )
    with open(os.path.join(preset_dir, "config.json")) as file:
        spec = json.load(file)
    if "config" not in spec or "class_name" not in spec:
        raise ValueError(
            f"{preset_dir}/config.json does not describe a Keras object "
            "(no 'class_name' and 'config')."
        )
    return spec


def _source_class(spec):
    if spec.get("registered_name"):
        return spec["registered_name"]
    package = "keras_hub" if "keras_hub" in spec.get("module", "") else "keras_ssl"
    return f"{package}>{spec['class_name']}"


def backbone_options_for_preset(preset_dir):
    """Constructor options a keras-ssl backbone needs to hold the preset.

    `{"position_embedding": "learned"}` for a keras-hub ViT preset (its
    positions are learned), the preset's own choice for a keras-ssl ViT
    preset, `{}` otherwise.
    """
    spec = read_preset_config(preset_dir)
    source = _source_class(spec)
    if source == KERAS_HUB_VIT:
        return {"position_embedding": "learned"}
    if source == "keras_ssl>ViTBackbone":
        return {"position_embedding": spec["config"].get("position_embedding", "sincos")}
    return {}


def initialize_from_preset(backbone, preset_dir):
    """Copies a keras-hub preset's weights into `backbone`, in place.

    Args:
        backbone: a built keras-ssl `ViTBackbone` (from a keras-hub ViT
            preset or one of its own class) or any keras-hub `Backbone`
            (from a preset of its own class, e.g. keras-hub's
            `ResNetBackbone`).
        preset_dir: a preset directory on disk.

    Returns:
        A `PresetInitReport` naming what was copied and what was not.

    Raises:
        FileNotFoundError: `preset_dir` is not a preset directory.
        ValueError: the architectures differ (the message names each config
            field that differs) or the preset's class cannot initialise this
            backbone.
    """
    from keras_hub.models import Backbone

    from keras_ssl.backbones.vit import ViTBackbone

    preset_dir = os.fspath(preset_dir)
    spec = read_preset_config(preset_dir)
    source = _source_class(spec)
    target = keras.saving.get_registered_name(type(backbone))
    if isinstance(backbone, ViTBackbone) and source == KERAS_HUB_VIT:
        _raise_if_differs(preset_dir, source, _vit_differences(spec["config"], backbone))
        preset = Backbone.from_preset(preset_dir)
        report = _copy_keras_hub_vit(preset, backbone, preset_dir)
    elif source == target:
        _raise_if_differs(
            preset_dir, source, _config_differences(spec["config"], backbone)
        )
        preset = Backbone.from_preset(preset_dir)
        report = _copy_in_order(preset, backbone, preset_dir, source)
    else:
        supported = f"a {target} preset"
        if isinstance(backbone, ViTBackbone):
            supported = f"a keras-hub ViTBackbone preset or {supported}"
        raise ValueError(
            f"The preset {preset_dir} holds a {source}; this {target} can be "
            f"initialised from {supported}. Choose the backbone that matches "
            "the preset (e.g. vit_base16 for keras-hub's ViT-B/16, resnet50 "
            "for keras-hub's ResNet-50)."
        )
    for name in ("preprocessor.json", "image_converter.json"):
        if os.path.isfile(os.path.join(preset_dir, name)):
            report.not_copied.append(
                f"the preset's image preprocessing ({name}): keras-ssl feeds "
                "images in [0, 1]"
            )
            break
    return report


# --- architecture checks -----------------------------------------------------
def _raise_if_differs(preset_dir, source, differences):
    # One line: the CLI shows a ValueError's first line.
    if differences:
        fields = "; ".join(
            f"{field}: preset {theirs!r}, backbone {ours!r}"
            for field, theirs, ours in differences
        )
        raise ValueError(
            f"The {source} preset {preset_dir} does not match this backbone's "
            f"architecture ({fields}). Build the backbone with the preset's "
            "values, or choose a preset of this architecture."
        )


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _vit_differences(config, backbone):
    """(field, preset value, backbone value) where the ViTs differ."""
    patch = config["patch_size"]
    patch = list(patch) if isinstance(patch, (tuple, list)) else [patch, patch]
    checks = [
        ("patch_size", patch, [backbone.patch_size] * 2),
        ("hidden_dim", config["hidden_dim"], backbone.hidden_dim),
        ("num_layers", config["num_layers"], backbone.num_layers),
        ("num_heads", config["num_heads"], backbone.num_heads),
        ("mlp_dim (mlp_ratio·hidden_dim here)", config["mlp_dim"],
         int(round(backbone.mlp_ratio * backbone.hidden_dim))),
        ("use_class_token", bool(config.get("use_class_token", True)),
         backbone.use_class_token),
        ("image channels", config["image_shape"][-1], backbone.image_shape[-1]),
    ]
    differences = [c for c in checks if c[1] != c[2]]
    epsilon = float(config.get("layer_norm_epsilon", 1e-6))
    if not math.isclose(epsilon, backbone.layer_norm_epsilon, rel_tol=1e-6):
        differences.append(
            ("layer_norm_epsilon", epsilon, backbone.layer_norm_epsilon)
        )
    return differences


def _config_differences(config, backbone):
    """Differences of two configs of one class, beyond the image size (an
    entry the preset lacks, saved by an older version, takes the default)."""
    signature = inspect.signature(type(backbone).__init__).parameters.values()
    defaults = {p.name: p.default for p in signature
                if p.default is not inspect.Parameter.empty}
    ours = _plain(backbone.get_config())
    theirs = _plain({**{k: v for k, v in defaults.items() if k in ours}, **config})
    return [
        (key, theirs.get(key), ours.get(key))
        for key in sorted(set(ours) | set(theirs))
        if key not in _IGNORED and theirs.get(key) != ours.get(key)
    ]


# --- copying -----------------------------------------------------------------
def _numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value), dtype="float32")


def _assign(variable, value):
    value = np.asarray(value, dtype="float32")
    if tuple(variable.shape) != value.shape:
        raise ValueError(
            f"{variable.path}: shape {tuple(variable.shape)} here, "
            f"{value.shape} in the preset."
        )
    variable.assign(value)  # cast to the variable's dtype by Keras


def _copy_dense(target, source):
    """Kernel and bias (zeros where the preset's layer has none)."""
    _assign(target.kernel, _numpy(source.kernel))
    if getattr(target, "bias", None) is not None:
        bias = getattr(source, "bias", None)
        _assign(
            target.bias,
            _numpy(bias) if bias is not None else np.zeros(target.bias.shape),
        )


def _copy_norm(target, source):
    _assign(target.gamma, _numpy(source.gamma))
    _assign(target.beta, _numpy(source.beta))


def resize_positions(table, source_grid, target_grid):
    """A `(rows·cols, D)` position table resized bicubically to another grid.

    PyTorch's `F.interpolate(mode="bicubic", align_corners=False)` (cubic
    convolution with a = -0.75, half-pixel centres, edges repeated), the
    resize of MAE's and timm's `interpolate_pos_embed`, in NumPy so that
    every backend gets the same numbers.
    """
    rows, cols = source_grid
    table = np.asarray(table, dtype="float64").reshape(rows, cols, -1)
    if tuple(source_grid) == tuple(target_grid):
        return table.reshape(rows * cols, -1).astype("float32")
    along_rows = _cubic_matrix(rows, target_grid[0])
    along_cols = _cubic_matrix(cols, target_grid[1])
    resized = np.einsum("ir,jc,rcd->ijd", along_rows, along_cols, table)
    return resized.reshape(target_grid[0] * target_grid[1], -1).astype("float32")


def _cubic_matrix(size_in, size_out, a=-0.75):
    """`(size_out, size_in)` weights of 1-D bicubic resizing."""

    def kernel(x):
        x = abs(x)
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        if x < 2:
            return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
        return 0.0

    weights = np.zeros((size_out, size_in))
    scale = size_in / size_out
    for i in range(size_out):
        position = (i + 0.5) * scale - 0.5
        start = math.floor(position)
        for tap in range(start - 1, start + 3):
            weights[i, min(max(tap, 0), size_in - 1)] += kernel(position - tap)
    return weights


def _copy_keras_hub_vit(preset, backbone, preset_dir):
    """keras-hub ViT's layers → keras-ssl ViT's layers (see the module doc)."""
    embedding = preset.get_layer("vit_patching_and_embedding")
    encoder = preset.get_layer("vit_encoder")
    report = PresetInitReport(preset_dir, KERAS_HUB_VIT, copied=[])

    _copy_dense(backbone.patch_embedding.projection, embedding.patch_embedding)
    report.copied.append("patch embedding (convolution kernel and bias)")
    positions = _numpy(embedding.position_embedding.embeddings)
    if backbone.use_class_token:
        _assign(backbone.class_token.token,
                _numpy(embedding.class_token) + positions[:1][None])
        report.copied.append(
            "class token (plus its position embedding, folded in: keras-ssl "
            "adds no position to the class token)"
        )
        positions = positions[1:]
    source_grid = tuple(
        s // p for s, p in zip(embedding.image_size, embedding.patch_size)
    )
    if backbone.position_embedding == "learned":
        _assign(
            backbone.patch_embedding.learned_positions,
            resize_positions(positions, source_grid, backbone.grid),
        )
        if source_grid == tuple(backbone.grid):
            report.copied.append("patch position embeddings")
        else:
            report.copied.append(
                "patch position embeddings, resized bicubically from a "
                f"{source_grid[0]}×{source_grid[1]} to a "
                f"{backbone.grid[0]}×{backbone.grid[1]} patch grid"
            )
    else:
        report.not_copied.append(
            "patch position embeddings: this backbone adds fixed sin-cos "
            "positions (build it with position_embedding='learned' to copy them)"
        )

    for ours, theirs in zip(backbone.transformer_layers, encoder.encoder_layers):
        _copy_norm(ours._self_attention_layer_norm, theirs.layer_norm_1)
        attention = ours._self_attention_layer
        for name in ("query_dense", "key_dense", "value_dense", "output_dense"):
            _copy_dense(getattr(attention, name), getattr(theirs.mha, name))
        _copy_norm(ours._feedforward_layer_norm, theirs.layer_norm_2)
        _copy_dense(ours._feedforward_intermediate_dense, theirs.mlp.dense_1)
        _copy_dense(ours._feedforward_output_dense, theirs.mlp.dense_2)
    _copy_norm(backbone.layer_norm, encoder.layer_norm)
    report.copied.append(
        f"{backbone.num_layers} Transformer block"
        f"{'s' if backbone.num_layers != 1 else ''} (layer norms, query/key/"
        "value/output projections, MLP) and the final layer norm"
    )
    return report


def _copy_in_order(preset, backbone, preset_dir, source):
    """Every weight of a preset of the backbone's own class, in order."""
    theirs, ours = preset.weights, backbone.weights
    if len(theirs) != len(ours):
        raise ValueError(
            f"The {source} preset {preset_dir} has {len(theirs)} weights, this "
            f"backbone {len(ours)}: the architectures differ."
        )
    mismatched = [
        f"{o.path}: {tuple(o.shape)} here, {tuple(t.shape)} in the preset"
        for t, o in zip(theirs, ours) if tuple(t.shape) != tuple(o.shape)
    ]
    if mismatched:
        raise ValueError(
            f"The {source} preset {preset_dir} does not match this backbone's "
            f"weights ({'; '.join(mismatched)})."
        )
    for t, o in zip(theirs, ours):
        _assign(o, _numpy(t))
    count = sum(int(np.prod(w.shape)) for w in ours)
    report = PresetInitReport(
        preset_dir, source,
        copied=[f"all {len(ours)} weights ({count:,} values), layer by layer"],
    )
    theirs_shape = _plain(preset.get_config().get("image_shape"))
    ours_shape = _plain(backbone.get_config().get("image_shape"))
    if theirs_shape != ours_shape:
        report.notes.append(
            f"image_shape: preset {theirs_shape}, backbone {ours_shape} (the "
            "weights do not depend on it)"
        )
    return report

"""`run` and `save`: one way to train any method and one output layout.

`run(method, preset, data, overrides)` resolves the config
(`keras_ssl.recipes.make_config`), loads the method's default data when none
is given, trains through the method's family (`keras_ssl.training` for the
vision methods, `keras_ssl.image_text`, `keras_ssl.language`,
`keras_ssl.speech`) and returns a `RunResult` whose `scores` are rows of the
same kind for every method: the pretrained model, and the baselines it is
measured against (random initialisation, raw pixels).

`save(result, out)` writes the same files for every method (`OUTPUT_FILES`),
plus the method's pictures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import resource
import shutil
from typing import Any, Callable

import keras

from keras_ssl.recipes import backups, make_config
from keras_ssl.recipes.methods import DEFAULT_DATA, get_method

# What `save` writes for every method.
OUTPUT_FILES = ("encoder.keras", "encoder_preset/", "model.keras",
                "history.json", "summary.json", "training.png")


@dataclasses.dataclass
class RunResult:
    """What `run` returns.

    Attributes:
        method, preset: what ran.
        config: the resolved config.
        model: the trained method (`keras.Model`).
        encoder: the pretrained backbone it exports (CLIP: the image encoder).
        tokenizer: the tokenizer saved with the backbone (language), or None.
        history: `fit`'s history (metric → values per epoch).
        scores: rows of measurements, `{row: {metric: value}}`: the method's
            own row first (named after it), then its baselines
            (`"random_init"`, `"raw_pixels"`).
        train_seconds: seconds spent in `fit`.
        data_name: what it trained on.
        extra: other things worth keeping in `summary.json` (generated
            samples, the epochs of the online k-NN, ...).
        artifacts: `(out_dir) → list of file names`, the method's pictures
            and extra exports, written by `save`.
        family_result: the family function's own result.
    """

    method: str
    preset: str
    config: Any
    model: keras.Model
    encoder: Any
    tokenizer: Any
    history: dict
    scores: dict
    train_seconds: float
    data_name: str
    extra: dict = dataclasses.field(default_factory=dict)
    artifacts: Callable | None = None
    family_result: Any = None


# --- data --------------------------------------------------------------------
#: The side streamed images are resized to when the config gives none.
STREAM_IMAGE_SIZE = 224


def load_data(method, spec=None, config=None, data_dir=None, max_examples=None,
              skip_bad_files=False, text_key="text", pretrain_minutes=60.0,
              labelled_minutes=10.0, labelled=False, labels=None):
    """`(name, data)`: the data `method` trains on, from a `--dataset` spec.

    Specs: images `digits`, `npz:PATH` (in memory), `tfds:NAME`,
    `folder:PATH` (streamed: `keras_ssl.data.image_files`; a folder's
    `labels` are None, `"folders"` or a CSV path);
    image-caption pairs `digits`, `tfds:NAME`, `folder:PATH`; text `text`
    (the embedded corpus), a file or folder of `.txt` files, `tfds:NAME`;
    speech `speech` (the embedded spoken corpus), `folder:PATH`.
    """
    family = get_method(method).family
    spec = spec or DEFAULT_DATA[family]
    config = config if config is not None else make_config(method)
    on_bad_file = "skip" if skip_bad_files else "raise"
    if family == "vision" and spec.startswith(("folder:", "tfds:")):
        from keras_ssl.data.image_files import stream_image_data

        data = stream_image_data(
            spec, image_size=config.image_size or STREAM_IMAGE_SIZE,
            labels=labels, data_dir=data_dir, max_examples=max_examples,
            seed=config.seed, on_bad_file=on_bad_file, verbose=True)
        return data.name, data
    if family == "vision":
        from keras_ssl.data import load_image_data

        data = load_image_data(
            _array_spec(spec), image_size=config.image_size, data_dir=data_dir,
            max_examples=max_examples, seed=config.seed, on_bad_file=on_bad_file,
        )
        return data.name, data
    if family == "image_text":
        from keras_ssl.data import load_image_text_data

        path = spec[len("folder:"):] if spec.startswith("folder:") else spec
        data = load_image_text_data(
            path, image_size=config.image_size, data_dir=data_dir,
            max_examples=max_examples, seed=config.seed, on_bad_file=on_bad_file,
        )
        return data.name, data
    if family == "language":
        from keras_ssl.data.text_stream import stream_text_files, stream_tfds_text
        from keras_ssl.language import embedded_corpus

        if spec == DEFAULT_DATA["language"]:
            return "the embedded corpus", embedded_corpus()
        if spec.startswith("tfds:"):
            return spec, stream_tfds_text(spec[len("tfds:"):], data_dir,
                                          text_key=text_key,
                                          max_examples=max_examples)
        return spec, stream_text_files(spec.removeprefix("folder:"))
    return _load_speech(spec, pretrain_minutes, labelled_minutes, labelled, data_dir)


def _array_spec(spec):
    """`npz:PATH` → the dict of arrays in that file; other specs unchanged."""
    if not spec.startswith("npz:"):
        return spec
    import numpy as np

    path = spec[len("npz:"):]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"NumPy file {path!r} not found")
    with np.load(path) as arrays:
        return {key: arrays[key] for key in arrays.files}


def _load_speech(spec, pretrain_minutes, labelled_minutes, labelled, data_dir=None):
    """The embedded spoken corpus (in memory), or a folder of .wav/.flac
    files or a TFDS speech set, streamed (`keras_ssl.data.audio_stream`)."""
    if spec == DEFAULT_DATA["speech"]:
        from keras_ssl.datasets import load_spoken_corpus

        return "the embedded spoken corpus", load_spoken_corpus(
            pretrain_minutes=pretrain_minutes, labelled_minutes=labelled_minutes,
            verbose=1)
    from keras_ssl.data.audio_stream import stream_audio_folder, stream_tfds_speech

    if spec.startswith("tfds:"):
        data = stream_tfds_speech(spec[len("tfds:"):], data_dir)
    elif spec.startswith("folder:"):
        data = stream_audio_folder(spec[len("folder:"):])
    else:
        raise ValueError(f"speech data must be 'speech', folder:PATH or tfds:NAME; got {spec!r}")
    if labelled and not data.labelled:
        raise ValueError(
            f"{spec} has no transcripts (transcripts.tsv, or NAME.txt beside "
            "NAME.wav): CTC fine-tuning needs them")
    return spec, data


# --- the families ---------------------------------------------------------------
def _vision(method, config, data, name, callbacks, verbose, backup, evaluate):
    from keras_ssl import training
    from keras_ssl.data.image_files import is_streamed

    result = training.pretrain(
        data, config, callbacks=[*backup, *callbacks], verbose=verbose,
        baseline=evaluate)
    scores = {method: result.scores}
    if evaluate and result.random_init_scores:
        scores["random_init"] = result.random_init_scores
    if evaluate and not is_streamed(data):
        scores["raw_pixels"] = training.raw_pixel_scores(data)
    pictures = training.RECIPES[method].artifacts
    return dict(
        model=result.model, encoder=result.encoder, tokenizer=None,
        history=result.history, scores=scores,
        train_seconds=result.train_seconds,
        extra={"knn_epochs": result.knn_epochs},
        artifacts=(lambda out: pictures(result.model, data, out)) if pictures else None,
        family_result=result,
    )


def _image_text(method, config, data, name, callbacks, verbose, backup, evaluate):
    from keras_ssl.image_text import plot_top_captions, pretrain_clip

    result = pretrain_clip(data, config, callbacks=[*backup, *callbacks],
                           verbose=verbose)
    model = result.model

    def artifacts(out):
        model.text_encoder.save_to_preset(str(out / "text_encoder_preset"))
        plot_top_captions(
            model, data.x_test, list(data.captions_test), out / "top_captions.png",
            true_captions=list(data.captions_test),
        )
        return ["text_encoder_preset/", "top_captions.png"]

    return dict(
        model=model, encoder=model.image_encoder, tokenizer=None,
        history=result.history,
        scores={method: result.scores, "random_init": result.random_init_scores},
        train_seconds=result.train_seconds, artifacts=artifacts,
        family_result=result,
    )


def _language(method, config, data, name, callbacks, verbose, backup, evaluate):
    from keras_ssl.language import pretrain_language

    # The which-document probe is the embedded corpus' task.
    downstream = evaluate and name == "the embedded corpus"
    result = pretrain_language(data, config, callbacks=[*backup, *callbacks],
                               verbose=verbose, downstream=downstream)
    scores = {method: dict(result.scores)}
    if result.downstream:
        for key, value in result.downstream["pretrained"].items():
            scores[method][f"{key}_accuracy"] = value
        scores["random_init"] = {
            f"{k}_accuracy": v for k, v in result.downstream["random_init"].items()}
    model = result.model

    def artifacts(out):
        if not hasattr(model, "to_keras_hub"):
            return []
        model.to_keras_hub().save_to_preset(str(out / "causal_lm_preset"))
        return ["causal_lm_preset/"]

    return dict(
        model=model, encoder=model.backbone, tokenizer=result.tokenizer,
        history=result.history, scores=scores,
        train_seconds=result.train_seconds,
        extra={"samples": result.samples} if result.samples else {},
        artifacts=artifacts, family_result=result,
    )


def _speech(method, config, data, name, callbacks, verbose, backup, evaluate):
    from keras_ssl import speech

    result = speech.pretrain_wav2vec2(data, config,
                                      callbacks=[*backup, *callbacks],
                                      verbose=verbose)
    return dict(
        model=result.model, encoder=result.model.encoder, tokenizer=None,
        history=result.history,
        scores={method: {k: float(v) for k, v in result.scores.items()}},
        train_seconds=result.seconds, family_result=result,
    )


_FAMILIES = {"vision": _vision, "image_text": _image_text,
             "language": _language, "speech": _speech}


def run(method, preset="embedded", data=None, overrides=None, config=None,
        callbacks=(), verbose="auto", backup_dir=None, backup_every=None,
        evaluate=True, data_name=None, run_config=None, keep_backup=False):
    """Trains `method` with a preset and measures it.

    Args:
        method: a key of `keras_ssl.recipes.METHODS`.
        preset: a preset name (`keras_ssl.recipes.presets.names(method)`).
        data: the data (as `load_data` returns it), or None for the
            method's embedded data.
        overrides: config values that replace the preset's.
        config: a ready config instead of `preset` + `overrides`.
        callbacks: extra Keras callbacks.
        verbose: `fit`'s verbosity.
        backup_dir: back up there and resume an interrupted run found there
            (`keras_ssl.callbacks.ResumableBackup`).
        backup_every: optimizer steps between backups (default: each epoch).
        run_config: the run's settings, stored with each backup; a backup
            of other settings is refused.
        keep_backup: keep the backup when training ends (the CLI deletes it
            once the outputs are written).
        evaluate: also measure the baselines (random init, raw pixels) and
            the downstream probes.
        data_name: how to call `data` in the summary.

    Returns:
        A `RunResult`.
    """
    spec = get_method(method)
    config = config if config is not None else make_config(method, preset, overrides)
    if data is None:
        data_name, data = load_data(method, config=config)
    data_name = data_name or getattr(data, "name", type(data).__name__)
    backup = []
    if backup_dir is not None:
        from keras_ssl.callbacks import ResumableBackup

        backup = [ResumableBackup(os.fspath(backup_dir),
                                  save_freq=backup_every or "epoch",
                                  delete_checkpoint=not keep_backup,
                                  run_config=run_config)]
    parts = _FAMILIES[spec.family](method, config, data, data_name,
                                   list(callbacks), verbose, backup, evaluate)
    if backup and backup[0].epoch_logs:
        # The whole run's epochs, those of interrupted runs included (and
        # what the backup does not see, such as a curriculum stage's).
        parts["history"] = {**parts["history"], **backup[0].history}
        if "knn_epochs" in parts.get("extra", {}):
            parts["extra"]["knn_epochs"] = [
                e["epoch"] + 1 for e in backup[0].epoch_logs if "knn_accuracy" in e]
    return RunResult(method=method, preset=preset, config=config,
                     data_name=data_name, **parts)


def check_data(method, data, config):
    """Problems of `data` for `config` found before training: a batch larger
    than the data (a `ValueError` naming the flag to change)."""
    family = get_method(method).family
    if family == "vision":
        from keras_ssl.data.image_files import is_streamed

        images = data.unlabeled if is_streamed(data) else data.x_unlabeled
        count, what = len(images), "unlabelled images"
    elif family == "image_text":
        count, what = len(data.x_train), "image-caption pairs"
    else:
        return
    if config.batch_size > count:
        raise ValueError(
            f"--batch-size {config.batch_size} is larger than the {count} {what} "
            f"of {getattr(data, 'name', 'the data')}: pass a smaller --batch-size")


# --- the one output layout ---------------------------------------------------------
def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return value


def peak_memory_gib():
    """This process' peak resident memory so far, in GiB."""
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def save(result, out, total_seconds=None):
    """Writes a `RunResult` to the folder `out`, the same layout for every
    method (`OUTPUT_FILES`):

        encoder.keras      the pretrained backbone (CLIP: the image encoder)
        encoder_preset/    the same as a keras-hub preset folder (with the
                           tokenizer, for the language methods)
        model.keras        the whole method
        history.json       fit's history (and the online k-NN's epochs)
        summary.json       method, preset, data, backend, config, timings,
                           scores (and generated samples)
        training.png       the history, plotted

    plus the method's own pictures and exports (MAE and BEiT
    `reconstructions.png`, CLIP `top_captions.png`, GPT `causal_lm_preset/`,
    ...). Everything is written to `out/.incomplete/` first and then moved
    into `out` one rename at a time, `summary.json` last: a folder with a
    `summary.json` holds a finished run. Returns the list of names written.
    """
    out = pathlib.Path(out)
    staging = out / backups.STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    written = _write(result, staging, total_seconds)
    backups.fault_point("outputs.written")
    backups.publish(str(staging), str(out))
    return written


def _write(result, out, total_seconds):
    """Every output of `save` into the folder `out`."""
    from keras_ssl.evaluation import plot_history

    encoder = result.encoder
    encoder.save(out / "encoder.keras")
    written = ["encoder.keras"]
    if hasattr(encoder, "save_to_preset"):
        from keras_ssl.backbones import save_preset

        save_preset(encoder, out / "encoder_preset", result.tokenizer)
        written.append("encoder_preset/")
    result.model.save(out / "model.keras")
    written.append("model.keras")
    history = {"history": result.history}
    if "knn_epochs" in result.extra:
        history["knn_epochs"] = result.extra["knn_epochs"]
    (out / "history.json").write_text(json.dumps(_jsonable(history), indent=2))
    plot_history(
        result.history, out / "training.png",
        title=f"{result.method} on {result.data_name} ({keras.backend.backend()})",
        knn_epochs=result.extra.get("knn_epochs"),
    )
    written += ["history.json", "summary.json", "training.png"]
    if result.artifacts is not None:
        written += list(result.artifacts(out))
    summary = {
        "method": result.method,
        "preset": result.preset,
        "dataset": result.data_name,
        "backend": keras.backend.backend(),
        "config": _jsonable(dataclasses.asdict(result.config)),
        "train_seconds": round(result.train_seconds, 1),
        "total_seconds": round(total_seconds or result.train_seconds, 1),
        "peak_memory_gib": round(peak_memory_gib(), 2),
        "scores": _jsonable(result.scores),
        **{k: _jsonable(v) for k, v in result.extra.items() if k != "knn_epochs"},
    }
    # Written last: a folder with a summary.json holds a finished run.
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return written

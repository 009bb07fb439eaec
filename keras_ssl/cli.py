"""The `keras-ssl` command line: a thin layer over `keras_ssl.recipes`.

    keras-ssl pretrain METHOD [--preset embedded|paper] [--dataset SPEC]
                              [--set KEY=VALUE ...] [--FIELD VALUE ...]
                              [--out DIR] [--backend tensorflow|jax|torch]
                              [--resume] [--backup-every STEPS] [--quiet]
    keras-ssl presets [METHOD]
    keras-ssl finetune ctc [--encoder runs/wav2vec2-speech/encoder.keras|random]
    keras-ssl zero-shot [--model runs/clip-digits/model.keras]
    keras-ssl --version

Every field of the method's config is a flag (`keras-ssl pretrain METHOD
--help` lists them) and a `--set` key. Keras reads its backend once, at
import, so this module checks the whole command, config included, before
anything imports Keras.
"""

import argparse
import ast
import contextlib
import dataclasses
import os
import pathlib
import re
import shutil
import sys
import time

from keras_ssl import recipes
from keras_ssl.recipes import backups

# Flags of the data each family reads, beside `--dataset`:
# name → (argparse keyword arguments).
_DATA_FLAGS = {
    "data_dir": dict(default=None, help="local TFDS data_dir (with tfds:NAME)"),
    "max_examples": dict(type=int, default=None,
                         help="cap on examples per split (large datasets)"),
    "skip_bad_files": dict(action="store_true",
                           help="skip undecodable images and empty or non-UTF-8 "
                           "captions (listed in a warning) instead of failing"),
    "text_key": dict(default="text",
                     help="with tfds:NAME: the feature holding the text"),
    "pretrain_minutes": dict(type=float, default=60.0,
                             help="minutes of the embedded spoken corpus"),
    "labels": dict(default=None,
                   help="with folder:PATH: 'folders' (class sub-folders) or a CSV "
                   "of path,label, to score the representation (default: unlabelled)"),
}
_FAMILY_DATA = {
    "vision": ("data_dir", "max_examples", "skip_bad_files", "labels"),
    "image_text": ("data_dir", "max_examples", "skip_bad_files"),
    "language": ("data_dir", "max_examples", "text_key"),
    "speech": ("pretrain_minutes", "data_dir"),
}
_DATASET_HELP = {
    "vision": "digits (embedded, default), folder:PATH (images, flat or nested, "
    "streamed; see --labels), tfds:NAME (streamed from --data-dir) or npz:PATH "
    "(arrays x, y or x_train, y_train, x_test, y_test)",
    "image_text": "digits (embedded captioned digits, default), tfds:NAME or "
    "folder:PATH (images with .txt captions)",
    "language": "text (the embedded corpus, default), a UTF-8 text file or a "
    "folder of .txt/.md files, or tfds:NAME (both streamed)",
    "speech": "speech (the embedded spoken corpus, default), folder:PATH of "
    ".wav/.flac files (transcripts.tsv or NAME.txt beside each, for CTC) or "
    "tfds:NAME (both streamed)",
}
_BACKENDS = ("tensorflow", "jax", "torch")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, without the usage."""

    hint = ""

    def error(self, message):
        self.exit(2, f"keras-ssl: error: {message}{self.hint}\n")


def _fail(message):
    sys.stderr.write(f"keras-ssl: error: {message}\n")
    return 2


def _version():
    from keras_ssl import __version__

    return f"keras-ssl {__version__}"


def _parser():
    parser = _Parser(
        prog="keras-ssl",
        description="Self-supervised pretraining for Keras 3 "
        "(TensorFlow, JAX, PyTorch).",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    p = commands.add_parser(
        "pretrain", add_help=False,
        help="pretrain an encoder with a method's preset and measure it",
    )
    p.add_argument("method", nargs="?", help=f"one of: {', '.join(recipes.METHODS)}")
    p.add_argument("-h", "--help", action="store_true")
    s = commands.add_parser("presets", help="list the presets and their values")
    s.add_argument("method", nargs="?", help="a method (default: all)")
    f = commands.add_parser(
        "finetune",
        help="fine-tune a pretrained encoder on a labelled task",
        description="CTC fine-tuning of a wav2vec 2.0 encoder on the labelled "
        "part of the embedded spoken corpus (or a folder of .wav files with "
        "transcripts), scored by character and word error rate on held-out "
        "speech.",
    )
    f.add_argument("method", metavar="task", help="ctc")
    f.add_argument("--encoder", default="runs/wav2vec2-speech/encoder.keras",
                   help="a saved Wav2Vec2Backbone (.keras), or 'random' for "
                   "the same architecture at random initialisation")
    f.add_argument("--preset", default="embedded",
                   help="the wav2vec2 preset whose fine-tuning settings to use")
    f.add_argument("--dataset", default="speech",
                   help="speech (embedded, default) or folder:PATH of labelled "
                   ".wav files with transcripts (a tenth is held out)")
    f.add_argument("--labelled-minutes", type=float, default=10.0,
                   help="labelled minutes of the embedded corpus")
    f.add_argument("--steps", type=int, default=None, help="optimizer steps")
    f.add_argument("--learning-rate", type=float, default=None)
    f.add_argument("--seed", type=int, default=None)
    f.add_argument("--out", default=None, help="default runs/ctc-speech")
    f.add_argument("--backend", default=None, choices=_BACKENDS)
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    z = commands.add_parser(
        "zero-shot",
        help="classify images with a pretrained CLIP from class names",
        description="Load a CLIP model saved by `keras-ssl pretrain clip` "
        "and classify held-out images from class names and prompt templates.",
    )
    z.add_argument("--model", default="runs/clip-digits/model.keras")
    z.add_argument("--classes", default=None,
                   help="comma-separated class names (default: the data's)")
    z.add_argument("--templates", default=None,
                   help="comma-separated prompts with {} for the class name")
    z.add_argument("--num-images", type=int, default=8)
    z.add_argument("--dataset", default="digits",
                   help="image-caption data: digits, tfds:NAME, folder:PATH")
    z.add_argument("--data-dir", default=None, help="local TFDS data_dir")
    z.add_argument("--skip-bad-files", action="store_true",
                   help="skip undecodable images and empty captions")
    z.add_argument("--out", default=None, help="PNG of the predictions")
    z.add_argument("--backend", default=None, choices=_BACKENDS)
    return parser


# --- the flags of one method -----------------------------------------------------
def _flag(name):
    return "--" + name.replace("_", "-")


def _value_type(example, annotation):
    """A parser of one flag's text, from the field's value or annotation."""
    kind = type(example) if example is not None else None
    if kind is None:
        text = str(annotation)
        kind = next((t for t in (bool, int, float, str, tuple, list)
                     if t.__name__ in re.split(r"[ |\[]+", text)), None)
    if kind is bool:
        return _parse_bool
    if kind in (int, float, str):
        return kind
    if kind in (tuple, list):
        return _parse_sequence
    return _parse_literal


def _parse_sequence(text):
    """A tuple flag's text: `(256, 256)`, `256,256`, one value `512`, or
    `None`."""
    value = _parse_literal(text)
    if value is None:
        return None
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _parse_bool(text):
    lowered = str(text).lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_literal(text):
    """A Python literal (`(0.2, 1.0)`, `{'a': 1}`, `None`), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _settings(method, preset):
    """`{key: (example value, annotation, help)}` of what `method` takes."""
    config = recipes.make_config(method, preset)
    cls = type(config)
    found = {}
    for field in dataclasses.fields(cls):
        if field.name in ("method", "method_options"):
            continue
        found[field.name] = (getattr(config, field.name), field.type,
                             field.metadata.get("help", ""))
    for key, value in getattr(config, "method_options", {}).items():
        # An option that is None here takes its type from another preset
        # (SimCLR's projection_hidden_dims: None embedded, (2048,) paper).
        typed = [type(v).__name__
                 for v in recipes.presets.option_values(method, key)
                 if v is not None]
        found.setdefault(key, (value, typed[0] if typed else None,
                               f"{cls.__name__}.method_options: "
                               f"{recipes.METHODS[method].model}'s {key}"))
    return found


def _method_parser(method, preset):
    spec = recipes.get_method(method)
    parser = _Parser(
        prog=f"keras-ssl pretrain {method}",
        description=f"{method}: {spec.summary}. Presets: "
        f"{', '.join(recipes.presets.names(method))} (keras-ssl presets {method}).",
    )
    parser.add_argument("method", help=argparse.SUPPRESS)
    common = parser.add_argument_group("run")
    common.add_argument("--preset", default="embedded",
                        help="the preset whose values the run starts from")
    common.add_argument("--dataset", default=recipes.DEFAULT_DATA[spec.family],
                        help=_DATASET_HELP[spec.family])
    for name in _FAMILY_DATA[spec.family]:
        common.add_argument(_flag(name), dest=name, **_DATA_FLAGS[name])
    common.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="set any value of the config (repeatable)")
    common.add_argument("--out", default=None,
                        help="output folder (default: runs/METHOD-DATASET)")
    common.add_argument("--backend", default=None, choices=_BACKENDS,
                        help=f"Keras backend (default: $KERAS_BACKEND, else "
                        f"{spec.backend})")
    common.add_argument("--quiet", action="store_true", help="no progress lines")
    common.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in OUT from its "
                        "backup (OUT/backup), exactly where it stopped")
    common.add_argument("--restart", action="store_true",
                        help="drop the backup in OUT and train from the start")
    common.add_argument("--backup-every", type=int, default=None, metavar="STEPS",
                        help="back up every STEPS optimizer steps (default: "
                        "every epoch)")
    common.add_argument("--verbose", action="store_true",
                        help="show the frameworks' own logs and warnings "
                        "(default: OUT/framework.log)")
    fields = parser.add_argument_group(f"{method} settings (also --set KEY=VALUE)")
    settings = _settings(method, preset)
    for name, (example, annotation, text) in settings.items():
        fields.add_argument(_flag(name), dest=f"setting:{name}", default=None,
                            type=_value_type(example, annotation), metavar="V",
                            help=f"{text} ({preset}: {example!r})")
    parser.hint = (f"; {method} takes: "
                   + ", ".join(_flag(n) for n in settings)
                   + " (keras-ssl pretrain " + method + " --help)")
    return parser, settings


def _overrides(args, settings):
    """The settings a command line gives, flags and `--set` together."""
    overrides = {name.split(":", 1)[1]: value for name, value in vars(args).items()
                 if name.startswith("setting:") and value is not None}
    for item in args.set:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}")
        if key not in settings and not key.startswith("method_options."):
            raise ValueError(
                f"{args.method} has no setting {key!r}; it takes: "
                f"{', '.join(settings)}")
        example, annotation, _ = settings.get(key, (None, None, ""))
        try:
            overrides[key] = _value_type(example, annotation)(text)
        except (ValueError, argparse.ArgumentTypeError) as error:
            raise ValueError(f"--set {key}: {error}") from None
    return overrides


def choose_backend(method, flag=None, environ=None):
    """The backend a run uses: `--backend`, else `$KERAS_BACKEND`, else the
    method's default (`recipes.METHODS[method].backend`)."""
    default = (recipes.FINETUNE_TASKS.get(method)
               or getattr(recipes.METHODS.get(method), "backend", "tensorflow"))
    return flag or (environ or {}).get("KERAS_BACKEND") or default


def _use_backend(backend):
    """Sets the backend for the imports to come (fails if Keras is already
    imported with another one; raises `MissingDependency` if the backend's
    extra is not installed)."""
    if backend in ("jax", "torch"):  # the [jax] and [torch] extras
        from keras_ssl._optional import require

        require(backend, backend, f"the {backend} backend (--backend picks another)",
                load=False)
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            return (f"Keras is already imported with the "
                    f"{keras.backend.backend()} backend; run from a fresh process")
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return None


_DATA_KINDS = {
    "vision": ("digits", "tfds:", "folder:", "npz:"),
    "image_text": ("digits", "tfds:", "folder:"),
    "speech": ("speech", "folder:", "tfds:"),
}


def _check_dataset(family, spec):
    """A data spec of the wrong kind, or a missing local path, found before
    any framework is imported."""
    kinds = _DATA_KINDS.get(family)
    if kinds and not any(spec == k or (k.endswith(":") and spec.startswith(k))
                         for k in kinds):
        names = [k + ("NAME" if k == "tfds:" else "PATH") if k.endswith(":") else k
                 for k in kinds]
        raise ValueError(f"unknown dataset {spec!r}: expected {', '.join(names)}")
    path = None
    if spec.startswith(("folder:", "npz:")):
        path = spec.split(":", 1)[1]
    elif family == "language" and spec != "text" and not spec.startswith("tfds:"):
        path = spec
    if path is not None and not os.path.exists(path):
        raise FileNotFoundError(f"{path!r} not found")


def _check_data_flags(family, spec, args):
    """Data flags that the data named by `spec` would ignore."""
    tfds = spec.startswith("tfds:")
    if getattr(args, "data_dir", None) is not None and not tfds:
        raise ValueError(f"--data-dir applies to tfds:NAME data, not {spec!r}")
    if family == "language" and args.max_examples is not None and not tfds:
        raise ValueError(f"--max-examples applies to tfds:NAME text, not {spec!r}")
    labels = getattr(args, "labels", None)
    if labels is not None and not spec.startswith("folder:"):
        raise ValueError(f"--labels applies to folder:PATH images, not {spec!r}")
    if labels not in (None, "folders") and not os.path.isfile(labels):
        raise FileNotFoundError(f"--labels {labels!r}: expected 'folders' or a CSV file")


def main(argv=None):
    from keras_ssl._optional import MissingDependency

    try:
        return _main(argv)
    except MissingDependency as error:  # an extra not installed: one line
        return _fail(str(error))


def _main(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = _parser().parse_known_args(argv)
    if args.command == "pretrain":
        return _pretrain(argv, args)
    if rest:
        return _fail(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "presets":
        return _presets(args.method)
    if args.command == "finetune":
        return _finetune(args)
    return _zero_shot(args)


def _presets(method=None):
    if method is None:
        for name, spec in recipes.METHODS.items():
            print(f"{name:<10}{spec.family:<12}{spec.summary}")
            for preset in recipes.presets.names(name):
                print(f"{'':<10}{preset:<12}{recipes.presets.get(name, preset).description}")
        print("\nkeras-ssl presets METHOD: the values of each preset")
        return 0
    try:
        names = recipes.presets.names(method)
    except ValueError as error:
        return _fail(str(error))
    for preset in names:
        info = recipes.presets.get(method, preset)
        print(f"{method} --preset {preset}: {info.description}")
        if info.reference:
            print(f"  reference: {info.reference}")
        if info.notes:
            print(f"  notes: {info.notes}")
        for key, value in recipes.describe(method, preset).items():
            print(f"  {key} = {value!r}")
        print()
    return 0


def _pretrain(argv, first):
    method = first.method
    if method is None:
        if first.help:
            print(f"keras-ssl pretrain METHOD [--help]: METHOD is one of "
                  f"{', '.join(recipes.METHODS)}")
            return 0
        return _fail(f"pretrain needs a method: one of {', '.join(recipes.METHODS)}")
    if method not in recipes.METHODS:
        return _fail(f"unknown method {method!r}: expected one of "
                     f"{', '.join(recipes.METHODS)}")
    rest = argv[argv.index("pretrain") + 1:]
    preset = _preset_of(rest)
    try:
        parser, settings = _method_parser(method, preset)
    except ValueError as error:
        return _fail(str(error))
    args = parser.parse_args(rest)
    family = recipes.METHODS[method].family
    dataset = args.dataset
    out = pathlib.Path(args.out or f"runs/{method}-{dataset.split(':')[0]}")
    try:
        config = recipes.make_config(method, preset, _overrides(args, settings))
        if args.backup_every is not None and args.backup_every < 1:
            raise ValueError(
                f"--backup-every must be at least 1, got {args.backup_every}")
        _check_dataset(family, dataset)
        _check_data_flags(family, dataset, args)
        backend = choose_backend(method, args.backend, os.environ)
        run_config = {
            "method": method, "preset": preset, "dataset": dataset,
            "backend": backend,
            "data": {n: getattr(args, n) for n in _FAMILY_DATA[family]},
            "config": dataclasses.asdict(config),
            "backup_every": args.backup_every,
        }
        state, folder = backups.check_out(out, args.resume, args.restart,
                                          run_config)
    except (ValueError, TypeError, FileNotFoundError) as error:
        return _fail(str(error).splitlines()[0])
    if state == "finished":
        print(f"keras-ssl: the run in {out}/ is finished (summary.json); "
              "nothing to resume")
        return 0
    problem = _use_backend(backend)
    if problem:
        return _fail(problem)
    with _framework_output(args.verbose, out):
        return _train_and_save(method, preset, family, dataset, config, args,
                               out, folder, run_config)


def _train_and_save(method, preset, family, dataset, config, args, out,
                    folder, run_config):
    """Loads the data, trains (from the backup `folder` when resuming),
    writes the outputs, then deletes the backup."""
    import keras

    from keras_ssl.recipes import engine

    start = time.perf_counter()
    data_options = {name: getattr(args, name) for name in _FAMILY_DATA[family]}
    try:
        name, data = engine.load_data(method, dataset, config, **data_options)
        engine.check_data(method, data, config)
    except (ValueError, FileNotFoundError) as error:
        # The data loaders name their arguments; the user typed flags.
        message = str(error).splitlines()[0]
        for argument in ("image_size", "batch_size", "on_bad_file='skip'"):
            flag = "--skip-bad-files" if "bad_file" in argument else _flag(argument)
            message = message.replace(f"pass {argument}", f"pass {flag}")
        return _fail(message)
    print(f"keras-ssl: {method} ({preset} preset) on {name}, backend "
          f"{keras.backend.backend()}")
    backup_dir = backups.backup_dir_of(out)
    if folder is not None:
        at = backups.read_metadata(folder)
        print(f"keras-ssl: resuming from {folder}: "
              f"epoch {at['epoch'] + 1}, step {at['step']}")
    try:
        # One progress line per epoch: on torch, Keras' per-step bar was
        # measured to stall some epochs.
        result = engine.run(method, preset, data=data, config=config,
                            verbose=0 if args.quiet else 2, data_name=name,
                            backup_dir=backup_dir, backup_every=args.backup_every,
                            run_config=run_config, keep_backup=True)
    except ValueError as error:
        return _fail(str(error).splitlines()[0])
    written = engine.save(result, out, total_seconds=time.perf_counter() - start)
    backups.fault_point("outputs.published")
    shutil.rmtree(backup_dir, ignore_errors=True)
    _print_scores(result.scores)
    for sample in result.extra.get("samples", []):
        print(f"\ngenerated: {sample!r}")
    print(f"\ntrained {result.train_seconds:.0f} s, total "
          f"{time.perf_counter() - start:.0f} s, peak memory "
          f"{engine.peak_memory_gib():.2f} GiB")
    print(f"wrote {', '.join(written)} to {out}/")
    if family == "speech":
        print(f"next: keras-ssl finetune ctc --encoder {out / 'encoder.keras'}")
    return 0


@contextlib.contextmanager
def _framework_output(verbose, out):
    """Unless `verbose`: the frameworks' C++ logs (TensorFlow, XLA, absl)
    go to OUT/framework.log instead of the terminal, and Keras warnings that
    do not concern a CLI user are hidden."""
    if verbose:
        yield
        return
    import warnings

    out.mkdir(parents=True, exist_ok=True)
    saved = None
    try:
        sys.stderr.flush()
        log = os.open(out / "framework.log",
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        saved = os.dup(2)
        os.dup2(log, 2)
        os.close(log)
    except OSError:
        saved = None
    # Python's own stderr (our messages, warnings, tracebacks) stays on the
    # terminal when it was file descriptor 2.
    python_stderr = None
    try:
        if saved is not None and sys.stderr.fileno() == 2:
            python_stderr = sys.stderr
            sys.stderr = open(os.dup(saved), "w", buffering=1)
    except (AttributeError, OSError, ValueError):
        python_stderr = None
    try:
        with warnings.catch_warnings():
            for text in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=text)
            yield
    finally:
        if python_stderr is not None:
            sys.stderr.close()
            sys.stderr = python_stderr
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)


# Keras warnings about how the CLI itself calls Keras, not about the run.
_QUIET_WARNINGS = (
    ".*`shuffle=True` was passed, but will be ignored.*",
    ".*Your input ran out of data.*",
    ".*Skipping variable loading for optimizer.*",
    ".*does not have a `build\(\)` method implemented.*",
)


def _preset_of(argv):
    for i, item in enumerate(argv):
        if item == "--preset" and i + 1 < len(argv):
            return argv[i + 1]
        if item.startswith("--preset="):
            return item.split("=", 1)[1]
    return "embedded"


def _print_scores(scores):
    """The rows of a run's scores as one table (numbers only)."""
    metrics = []
    for row in scores.values():
        metrics += [k for k, v in row.items()
                    if isinstance(v, (int, float)) and k not in metrics]
    if not metrics:
        print("\nnot scored: the data has no labels (give --labels to score "
              "the representation)")
        return
    width = max([len(m) for m in metrics] + [16]) + 2
    print(f"\n{'':<{width}}" + "".join(f"{row:>14}" for row in scores))
    for metric in metrics:
        cells = []
        for row in scores.values():
            value = row.get(metric)
            if isinstance(value, int) and not isinstance(value, bool):
                cells.append(f"{value:>14d}")  # e.g. best_layer, a block index
            elif isinstance(value, float):
                cells.append(f"{value:>14.4f}")
            else:
                cells.append(f"{'':>14}")
        print(f"{metric:<{width}}" + "".join(cells))


# --- fine-tuning and zero-shot ------------------------------------------------------
def _finetune(args):
    if args.method not in recipes.FINETUNE_TASKS:
        return _fail(f"unknown fine-tuning task {args.method!r}: expected one "
                     f"of {', '.join(recipes.FINETUNE_TASKS)}")
    overrides = {"finetune_steps": args.steps,
                 "finetune_learning_rate": args.learning_rate, "seed": args.seed}
    try:
        config = recipes.make_config(
            "wav2vec2", args.preset,
            {k: v for k, v in overrides.items() if v is not None})
        if args.encoder != "random" and not pathlib.Path(args.encoder).exists():
            raise FileNotFoundError(
                f"no encoder at {args.encoder}: pretrain one with `keras-ssl "
                "pretrain wav2vec2`, or pass --encoder random")
        _check_dataset("speech", args.dataset)
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error).splitlines()[0])
    problem = _use_backend(choose_backend(args.method, args.backend, os.environ))
    if problem:
        return _fail(problem)
    import json

    import keras

    import keras_ssl
    from keras_ssl import speech
    from keras_ssl.evaluation import plot_history
    from keras_ssl.recipes import engine

    try:
        where, corpus = engine.load_data(
            "wav2vec2", args.dataset, config,
            labelled_minutes=args.labelled_minutes, labelled=True)
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error).splitlines()[0])
    if args.encoder == "random":
        keras.utils.set_random_seed(config.seed + 2)
        encoder = speech.build_backbone(config)
    else:
        encoder = keras_ssl.load_model(args.encoder)
    out = pathlib.Path(args.out or "runs/ctc-speech")
    out.mkdir(parents=True, exist_ok=True)
    print(f"keras-ssl: CTC fine-tuning of {args.encoder} on {where} "
          f"({corpus.labelled.minutes:.1f} min labelled, test "
          f"{corpus.test.minutes:.1f} min), {config.finetune_steps} steps, "
          f"backend {keras.backend.backend()}")
    try:
        result = speech.finetune_ctc(encoder, corpus, config,
                                     verbose=0 if args.quiet else 2, examples=5)
    except ValueError as error:
        return _fail(str(error).splitlines()[0])
    result.model.save(out / "model.keras")
    scores = result.scores
    summary = {
        "task": "ctc", "encoder": args.encoder, "dataset": where,
        "backend": keras.backend.backend(),
        "config": dataclasses.asdict(config),
        "train_seconds": round(result.seconds, 1),
        "labelled_minutes": scores["labelled_minutes"],
        "cer": scores["cer"], "wer": scores["wer"],
        "examples": scores["examples"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "history.json").write_text(json.dumps({"history": result.history}))
    plot_history(result.history, out / "training.png",
                 title=f"CTC fine-tuning ({keras.backend.backend()})")
    print(f"\ntest CER {scores['cer']:.3f}, WER {scores['wer']:.3f} "
          f"({scores['labelled_minutes']:.1f} labelled minutes)")
    for truth, heard in scores["examples"]:
        print(f"  truth: {truth}\n  heard: {heard}")
    print(f"wrote model.keras, summary.json, history.json, training.png to {out}/")
    return 0


def _zero_shot(args):
    path = pathlib.Path(args.model)
    if not path.exists():
        return _fail(
            f"no model at {path}: train one with `keras-ssl pretrain clip` "
            "or pass --model"
        )
    problem = _use_backend(choose_backend("clip", args.backend, os.environ))
    if problem:
        return _fail(problem)
    import numpy as np

    import keras_ssl
    from keras_ssl.evaluation import DIGIT_TEMPLATES, ZeroShotClassifier
    from keras_ssl.recipes import engine

    model = keras_ssl.load_model(path)
    try:
        _, data = engine.load_data("clip", args.dataset, data_dir=args.data_dir,
                                   skip_bad_files=args.skip_bad_files)
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error).splitlines()[0])
    classes = (
        [c.strip() for c in args.classes.split(",") if c.strip()]
        if args.classes else list(data.class_names or [])
    )
    templates = (
        tuple(t.strip() for t in args.templates.split(",") if t.strip())
        if args.templates else DIGIT_TEMPLATES
    )
    try:
        classifier = ZeroShotClassifier(model, classes, templates)
    except ValueError as error:
        return _fail(str(error).splitlines()[0])
    images = np.asarray(data.x_test[: args.num_images])
    indices, probabilities = classifier.top_k(images, k=min(3, len(classes)))
    for i in range(len(images)):
        guesses = ", ".join(
            f"{classes[j]} {p:.2f}" for j, p in zip(indices[i], probabilities[i])
        )
        print(f"image {i}: {guesses}   (caption: {data.captions_test[i]})")
    if data.y_test is not None and list(classes) == list(data.class_names or []):
        accuracy = float(np.mean(classifier.predict(data.x_test) == data.y_test))
        print(f"zero-shot accuracy on {len(data.x_test)} held-out images: "
              f"{accuracy:.3f} (chance {1 / len(classes):.3f})")
    if args.out:
        from keras_ssl.image_text import plot_top_captions

        prompts = [templates[0].format(c) for c in classes]
        plot_top_captions(model, images, prompts, args.out,
                          num_images=len(images), k=min(3, len(classes)))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

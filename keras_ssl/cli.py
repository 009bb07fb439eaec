"""The `keras-ssl` command line.

    keras-ssl pretrain simclr|moco|byol|dino|mae|beit|clip
                              [--dataset digits|tfds:NAME|folder:PATH]
                              [--epochs N] [--backbone NAME] [--out DIR]
                              [--backend tensorflow|jax|torch]
    keras-ssl pretrain bert|roberta|gpt|t5
                              [--text PATH|tfds:NAME] [--steps N] [--out DIR]
    keras-ssl pretrain wav2vec2 [--audio folder:PATH] [--steps N] [--out DIR]
    keras-ssl finetune ctc [--encoder runs/wav2vec2-speech/encoder.keras|random]
                           [--labelled-minutes 10] [--steps N] [--out DIR]
    keras-ssl zero-shot [--model runs/clip-digits/model.keras]
                        [--classes zero,one,...] [--templates "a {}.",...]
                        [--num-images 8]

Keras reads its backend once, at import, so this module imports nothing of
Keras (nor of keras_ssl's modules that do) until the arguments are parsed.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import resource
import sys
import time

# Measured on 2 CPU cores (benchmarks/speed.py): the fastest backend for the
# default run. KERAS_BACKEND or --backend overrides it.
DEFAULT_BACKEND = "tensorflow"
# Methods whose end-to-end run is faster on another backend, measured with
# the CLI on 2 CPU cores: MAE epochs (vit_tiny, batch 128, with the tf.data
# pipeline) took 10 s on eager torch against 14-26 s jit-compiled on
# TensorFlow and 22-39 s on JAX (benchmarks/quality.py: the whole MAE run
# 10.1 min on torch, 13.9 on TensorFlow). BEiT took as long on both (11.7
# and 11.6 min) and stays on the default.
# wav2vec 2.0 and CTC fine-tuning: 100 pre-training steps (8 utterances of
# 1-5 s) took 49 s on torch, against 190 s (jax) and 390 s (tensorflow),
# which compile once per length bucket.
METHOD_BACKENDS = {"mae": "torch", "wav2vec2": "torch", "ctc": "torch"}
# The keys of keras_ssl.training.RECIPES (a test keeps them equal), named
# here so that parsing the arguments imports no Keras.
METHOD_NAMES = ("simclr", "moco", "byol", "dino", "mae", "beit")
# Methods trained on image-caption pairs (keras_ssl.image_text).
IMAGE_TEXT_METHODS = ("clip",)
# Language methods (keras_ssl.language.METHODS).
LANGUAGE_METHODS = ("bert", "roberta", "gpt", "t5")
# Speech (keras_ssl.speech): pre-training, and the fine-tuning tasks.
SPEECH_METHODS = ("wav2vec2",)
FINETUNE_TASKS = ("ctc",)
ALL_METHODS = METHOD_NAMES + IMAGE_TEXT_METHODS + LANGUAGE_METHODS + SPEECH_METHODS


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, without the usage."""

    def error(self, message):
        self.exit(2, f"keras-ssl: error: {message}\n")


def _parser():
    parser = _Parser(
        prog="keras-ssl",
        description="Self-supervised pretraining for Keras 3 "
        "(TensorFlow, JAX, PyTorch).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    p = commands.add_parser(
        "pretrain",
        help="pretrain an encoder and measure it",
        description="Pretrain an encoder with a self-supervised method, then "
        "report k-NN and linear-probe accuracy next to random initialisation.",
    )
    p.add_argument("method", help=f"one of: {', '.join(ALL_METHODS)}")
    p.add_argument(
        "--dataset",
        default="digits",
        help="digits (embedded, default), tfds:NAME (with --data-dir), "
        "folder:PATH (class sub-folders) or npz:PATH (NumPy arrays x, y or "
        "x_train, y_train, x_test, y_test)",
    )
    p.add_argument("--data-dir", default=None, help="local TFDS data_dir")
    p.add_argument("--image-size", type=int, default=None,
                   help="resize images to this side (default: as stored)")
    p.add_argument("--max-examples", type=int, default=None,
                   help="cap on examples per split (large datasets)")
    p.add_argument("--skip-bad-files", action="store_true",
                   help="skip undecodable images and empty or non-UTF-8 "
                   "captions (counted and listed in a warning) instead of "
                   "failing on the first one")
    p.add_argument("--text", default=None, metavar="PATH|tfds:NAME",
                   help="language methods: a UTF-8 text file or a folder of "
                   ".txt files (one document each), or tfds:NAME with "
                   "--data-dir (default: the embedded corpus, CPython's "
                   "language reference and standard-library docstrings)")
    p.add_argument("--text-key", default="text",
                   help="with --text tfds:NAME: the feature holding the text")
    p.add_argument("--steps", type=int, default=None,
                   help="language methods (default 2500) and wav2vec2 "
                   "(default 3000, after any curriculum): optimizer steps")
    p.add_argument("--paper-objective", action="store_true",
                   help="wav2vec2: the paper's quantized targets and spans of 10 "
                   "(default: continuous targets, spans of 3)")
    p.add_argument("--curriculum-steps", type=int, default=None,
                   help="wav2vec2: steps of an opening curriculum (continuous "
                   "targets, spans of 3) before the main objective; default 0 "
                   "(with --paper-objective, 1500 lets it leave chance here)")
    p.add_argument("--audio", default=None, metavar="folder:PATH",
                   help="wav2vec2: a folder of 16-bit .wav files (default: the "
                   "embedded spoken corpus, eSpeak NG speech of the language "
                   "reference)")
    p.add_argument("--pretrain-minutes", type=float, default=60.0,
                   help="wav2vec2 on the embedded corpus: minutes of speech")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--backbone", default=None,
                   help="cifar_resnet_tiny (default; mae and beit: vit_tiny), "
                   "cifar_resnet_small, cifar_resnet18, resnet18, resnet50, "
                   "vit_base16")
    p.add_argument("--optimizer", default=None, help="adamw (default), lars, sgd")
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--temperature", type=float, default=None,
                   help="simclr (default 0.5) and moco (default 0.2) only")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--knn-every", type=int, default=None,
                   help="online k-NN every N epochs")
    p.add_argument("--fine-tune-epochs", type=int, default=None,
                   help="also fine-tune the encoder end to end for N epochs "
                   "and report its test accuracy (default: mae and beit 30, "
                   "others 0: not measured)")
    p.add_argument("--out", default=None,
                   help="output folder (default: runs/METHOD-DATASET)")
    p.add_argument("--backend", default=None,
                   choices=("tensorflow", "jax", "torch"),
                   help=f"Keras backend (default: $KERAS_BACKEND, else "
                   f"{DEFAULT_BACKEND}; mae: torch)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--resume", action="store_true",
                   help="back up the training state under OUT/backup and, "
                   "when an interrupted run with the same arguments left a "
                   "backup there, continue it exactly (weights, optimizer, "
                   "target networks, schedules, data position)")
    p.add_argument("--backup-every", type=int, default=None, metavar="STEPS",
                   help="with --resume: back up every STEPS optimizer steps "
                   "(default: at the end of every epoch)")
    f = commands.add_parser(
        "finetune",
        help="fine-tune a pretrained encoder on a labelled task",
        description="CTC fine-tuning of a wav2vec 2.0 encoder on the labelled "
        "part of the embedded spoken corpus (or a folder of .wav files with "
        "transcripts), scored by character and word error rate on held-out "
        "speech, next to a few decoded transcripts.",
    )
    f.add_argument("method", metavar="task", help="ctc")
    f.add_argument("--encoder", default="runs/wav2vec2-speech/encoder.keras",
                   help="a saved Wav2Vec2Backbone (.keras), or 'random' for "
                   "the same architecture at random initialisation")
    f.add_argument("--audio", default=None, metavar="folder:PATH",
                   help="labelled .wav files with transcripts (a tenth is held "
                   "out for the test)")
    f.add_argument("--labelled-minutes", type=float, default=10.0)
    f.add_argument("--steps", type=int, default=None,
                   help="optimizer steps (default 4000)")
    f.add_argument("--learning-rate", type=float, default=None)
    f.add_argument("--seed", type=int, default=None)
    f.add_argument("--out", default=None, help="default runs/ctc-speech")
    f.add_argument("--backend", default=None,
                   choices=("tensorflow", "jax", "torch"))
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    z = commands.add_parser(
        "zero-shot",
        help="classify images with a pretrained CLIP from class names",
        description="Load a CLIP model saved by `keras-ssl pretrain clip` "
        "and classify held-out images of the embedded corpus from class "
        "names and prompt templates only.",
    )
    z.add_argument("--model", default="runs/clip-digits/model.keras")
    z.add_argument("--classes", default=None,
                   help="comma-separated class names (default: the corpus')")
    z.add_argument("--templates", default=None,
                   help="comma-separated prompts with {} for the class name")
    z.add_argument("--num-images", type=int, default=8)
    z.add_argument("--dataset", default="digits",
                   help="image-caption data: digits, tfds:NAME, folder:PATH")
    z.add_argument("--data-dir", default=None, help="local TFDS data_dir")
    z.add_argument("--skip-bad-files", action="store_true",
                   help="skip undecodable images and empty captions")
    z.add_argument("--out", default=None, help="PNG of the predictions")
    z.add_argument("--backend", default=None)
    return parser


def _fail(message):
    sys.stderr.write(f"keras-ssl: error: {message}\n")
    return 2


def _peak_memory_gib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def choose_backend(method, flag=None, environ=None):
    """The backend a run uses: `--backend`, else `$KERAS_BACKEND`, else the
    method's measured default (`METHOD_BACKENDS`, else `DEFAULT_BACKEND`)."""
    return (
        flag
        or (environ or {}).get("KERAS_BACKEND")
        or METHOD_BACKENDS.get(method, DEFAULT_BACKEND)
    )


def main(argv=None):
    args = _parser().parse_args(argv)
    method = getattr(args, "method", "clip")
    if args.command == "finetune" and method not in FINETUNE_TASKS:
        return _fail(
            f"unknown fine-tuning task {method!r}: expected one of "
            f"{', '.join(FINETUNE_TASKS)}"
        )
    if args.command == "pretrain" and method not in ALL_METHODS:
        return _fail(
            f"unknown method {args.method!r}: expected one of "
            f"{', '.join(ALL_METHODS)}"
        )
    backend = choose_backend(method, args.backend, os.environ)
    if "keras" in sys.modules and args.backend:
        import keras

        if keras.backend.backend() != backend:
            return _fail(
                f"Keras is already imported with the "
                f"{keras.backend.backend()} backend; run from a fresh process"
            )
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.command == "zero-shot":
        return _zero_shot(args)
    if args.command == "finetune":
        return _finetune_ctc(args)
    if method in SPEECH_METHODS:
        return _pretrain_wav2vec2(args)
    if method in IMAGE_TEXT_METHODS:
        return _pretrain_clip(args)
    if method in LANGUAGE_METHODS:
        return _pretrain_language(args)
    return _pretrain(args)


def _dataset_spec(dataset):
    """`npz:PATH` → the dict of arrays in that file; other specs unchanged."""
    if not dataset.startswith("npz:"):
        return dataset
    import numpy as np

    path = dataset[len("npz:"):]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"NumPy file {path!r} not found")
    with np.load(path) as arrays:
        return {key: arrays[key] for key in arrays.files}


def _pretrain(args):
    from keras_ssl.data import load_image_data
    from keras_ssl.training import (
        RECIPES,
        PretrainConfig,
        pretrain,
        raw_pixel_scores,
    )

    overrides = {
        "method": args.method,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "backbone": args.backbone,
        "optimizer": args.optimizer,
        "learning_rate": args.learning_rate,
        "temperature": args.temperature,
        "seed": args.seed,
        "knn_every": args.knn_every,
        "fine_tune_epochs": args.fine_tune_epochs,
    }
    try:
        config = PretrainConfig(
            **{k: v for k, v in overrides.items() if v is not None}
        )
        data = load_image_data(
            _dataset_spec(args.dataset),
            image_size=args.image_size,
            data_dir=args.data_dir,
            max_examples=args.max_examples,
            seed=config.seed,
            on_bad_file="skip" if args.skip_bad_files else "raise",
        )
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error).splitlines()[0])

    import keras

    out = pathlib.Path(
        args.out or f"runs/{args.method}-{args.dataset.split(':')[0]}"
    )
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"keras-ssl: {args.method} on {data.name} "
        f"({len(data.x_unlabeled)} unlabelled images of {data.image_shape}, "
        f"{data.num_classes} classes) with {config.backbone}, "
        f"{config.epochs} epochs, backend {keras.backend.backend()}"
    )
    start = time.perf_counter()
    try:
        # One progress line per epoch: on torch, Keras' per-step bar was
        # measured to stall some epochs by ~20 s (41 s instead of 21 s).
        result = pretrain(data, config, verbose=0 if args.quiet else 2,
                          **_backup_arguments(args, out))
    except ValueError as error:
        return _fail(str(error).splitlines()[0])
    pixels = raw_pixel_scores(data)

    from keras_ssl.evaluation import plot_history

    encoder = result.encoder
    encoder.save(out / "encoder.keras")
    exported = ["encoder.keras"]
    if hasattr(encoder, "save_to_preset"):
        encoder.save_to_preset(str(out / "encoder_preset"))
        exported.append("encoder_preset/")
    result.model.save(out / "model.keras")
    exported.append("model.keras")
    summary = {
        "method": args.method,
        "dataset": data.name,
        "backend": keras.backend.backend(),
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "train_seconds": round(result.train_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        "peak_memory_gib": round(_peak_memory_gib(), 2),
        "scores": {
            args.method: result.scores,
            "random_init": result.random_init_scores,
            "raw_pixels": pixels,
        },
    }
    (out / "history.json").write_text(
        json.dumps(
            {"history": result.history, "knn_epochs": result.knn_epochs},
            indent=2,
        )
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot_history(
        result.history,
        out / "training.png",
        title=f"{args.method} on {data.name} ({keras.backend.backend()})",
        knn_epochs=result.knn_epochs,
    )
    exported += ["history.json", "summary.json", "training.png"]
    artifacts = RECIPES[args.method].artifacts
    if artifacts is not None:
        exported += artifacts(result.model, data, out)

    fine_tuned = "fine_tune_accuracy" in result.scores
    print(
        f"\n{'representation':<16}{'k-NN':>8}{'linear probe':>15}"
        + (f"{'fine-tuned':>13}" if fine_tuned else "")
    )
    for name, scores in summary["scores"].items():
        tuned = scores.get("fine_tune_accuracy")
        print(
            f"{name:<16}{scores['knn_accuracy']:>8.3f}"
            f"{scores['linear_probe_accuracy']:>15.3f}"
            + (f"{tuned:>13.3f}" if tuned is not None else
               f"{'':>13}" if fine_tuned else "")
        )
    print(
        f"\ntrained {result.train_seconds:.0f} s, total "
        f"{summary['total_seconds']:.0f} s, peak memory "
        f"{summary['peak_memory_gib']:.2f} GiB"
    )
    print(f"wrote {', '.join(exported)} to {out}/")
    return 0


def _backup_arguments(args, out):
    """`pretrain`'s backup arguments for `--resume` (none without it)."""
    if args.backup_every is not None and args.backup_every < 1:
        raise ValueError(
            f"--backup-every must be at least 1, got {args.backup_every}"
        )
    if not args.resume:
        return {}
    from keras_ssl.callbacks import backup_dir_of

    backup_dir = backup_dir_of(out)
    if os.path.exists(os.path.join(backup_dir, "training_metadata.json")):
        print(f"keras-ssl: resuming from the backup in {backup_dir}/")
    return {"backup_dir": backup_dir,
            "backup_freq": args.backup_every or "epoch"}


def _backup_callbacks(args, out):
    """`[ResumableBackup]` for `--resume` (none without it)."""
    backup = _backup_arguments(args, out)
    if not backup:
        return []
    from keras_ssl.callbacks import ResumableBackup

    return [ResumableBackup(backup["backup_dir"], save_freq=backup["backup_freq"])]


def _load_image_text(args, seed=0):
    from keras_ssl.data import load_image_text_data

    spec = args.dataset
    if spec.startswith("folder:"):
        spec = spec[len("folder:"):]
    return load_image_text_data(
        spec, image_size=getattr(args, "image_size", None),
        data_dir=args.data_dir, max_examples=getattr(args, "max_examples", None),
        seed=seed,
        on_bad_file="skip" if getattr(args, "skip_bad_files", False) else "raise",
    )


def _pretrain_clip(args):
    from keras_ssl.image_text import ClipConfig, plot_top_captions, pretrain_clip

    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "image_backbone": args.backbone,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
    }
    try:
        config = ClipConfig(**{k: v for k, v in overrides.items() if v is not None})
        data = _load_image_text(args, config.seed)
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error).splitlines()[0])

    import keras

    out = pathlib.Path(args.out or f"runs/clip-{args.dataset.split(':')[0]}")
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"keras-ssl: clip on {data.name} ({len(data.x_train)} image-caption "
        f"pairs of {data.image_shape}) with {config.image_backbone} and a "
        f"{config.text_layers}-layer text Transformer, {config.epochs} epochs, "
        f"backend {keras.backend.backend()}"
    )
    start = time.perf_counter()
    try:
        callbacks = _backup_callbacks(args, out)
        result = pretrain_clip(data, config, callbacks=callbacks,
                               verbose=0 if args.quiet else 2)
    except ValueError as error:
        return _fail(str(error).splitlines()[0])
    model = result.model
    model.save(out / "model.keras")
    model.image_encoder.save(out / "image_encoder.keras")
    model.text_encoder.save_to_preset(str(out / "text_encoder_preset"))
    exported = ["model.keras", "image_encoder.keras", "text_encoder_preset/"]
    if hasattr(model.image_encoder, "save_to_preset"):
        model.image_encoder.save_to_preset(str(out / "image_encoder_preset"))
        exported.append("image_encoder_preset/")
    summary = {
        "method": "clip",
        "dataset": data.name,
        "backend": keras.backend.backend(),
        "config": {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in dataclasses.asdict(config).items()
        },
        "train_seconds": round(result.train_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        "peak_memory_gib": round(_peak_memory_gib(), 2),
        "scores": {"clip": result.scores, "random_init": result.random_init_scores},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "history.json").write_text(json.dumps({"history": result.history}))
    from keras_ssl.evaluation import plot_history

    plot_history(result.history, out / "training.png",
                 title=f"clip on {data.name} ({keras.backend.backend()})")
    plot_top_captions(
        model, data.x_test, list(data.captions_test), out / "top_captions.png",
        true_captions=list(data.captions_test),
    )
    exported += ["summary.json", "history.json", "training.png", "top_captions.png"]
    keys = [k for k in ("zero_shot_accuracy", "linear_probe_accuracy",
                        "image_to_text_R@1", "image_to_text_R@5",
                        "image_to_text_R@10", "text_to_image_R@1",
                        "text_to_image_R@5", "text_to_image_R@10")
            if k in result.scores]
    print(f"\n{'score':<24}{'clip':>8}{'random init':>13}")
    for key in keys:
        print(f"{key:<24}{result.scores[key]:>8.3f}"
              f"{result.random_init_scores[key]:>13.3f}")
    if "chance" in result.scores:
        print(f"{'chance (zero-shot)':<24}{result.scores['chance']:>8.3f}")
    print(
        f"\ntrained {result.train_seconds:.0f} s, total "
        f"{summary['total_seconds']:.0f} s, peak memory "
        f"{summary['peak_memory_gib']:.2f} GiB"
    )
    print(f"wrote {', '.join(exported)} to {out}/")
    return 0


def _load_text(args):
    from keras_ssl.datasets.text_corpus import load_text_files, load_tfds_text
    from keras_ssl.language import embedded_corpus

    if args.text is None:
        return "the embedded corpus", embedded_corpus()
    if args.text.startswith("tfds:"):
        name = args.text[len("tfds:"):]
        return args.text, load_tfds_text(
            name, args.data_dir, text_key=args.text_key,
            max_examples=args.max_examples,
        )
    return args.text, load_text_files(args.text)


def _pretrain_language(args):
    from keras_ssl.language import LanguageConfig, pretrain_language

    overrides = {
        "method": args.method,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "fine_tune_epochs": args.fine_tune_epochs,
    }
    try:
        config = LanguageConfig(**{k: v for k, v in overrides.items() if v is not None})
        where, corpus = _load_text(args)
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error).splitlines()[0])

    import keras

    out = pathlib.Path(args.out or f"runs/{args.method}-text")
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"keras-ssl: {args.method} on {where} ({len(corpus.names)} documents, "
        f"{corpus.num_words} words), {config.num_layers} layers × "
        f"{config.hidden_dim}, {config.steps} steps of {config.batch_size} × "
        f"{config.sequence_length} tokens, backend {keras.backend.backend()}"
    )
    start = time.perf_counter()
    try:
        callbacks = _backup_callbacks(args, out)
        # The downstream task is the language reference's: only with the
        # embedded corpus.
        result = pretrain_language(
            corpus, config, callbacks=callbacks,
            verbose=0 if args.quiet else 2, downstream=args.text is None,
        )
    except ValueError as error:
        return _fail(str(error).splitlines()[0])
    model = result.model
    model.save(out / "model.keras")
    model.backbone.save_to_preset(str(out / "backbone_preset"))
    result.tokenizer.save_to_preset(str(out / "backbone_preset"))
    exported = ["model.keras", "backbone_preset/"]
    if hasattr(model, "to_keras_hub"):
        model.to_keras_hub().save_to_preset(str(out / "causal_lm_preset"))
        exported.append("causal_lm_preset/")
    summary = {
        "method": args.method,
        "text": where,
        "backend": keras.backend.backend(),
        "config": dataclasses.asdict(config),
        "train_seconds": round(result.train_seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        "peak_memory_gib": round(_peak_memory_gib(), 2),
        "scores": result.scores,
        "downstream": result.downstream,
        "samples": result.samples,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "history.json").write_text(json.dumps({"history": result.history}))
    from keras_ssl.evaluation import plot_history

    plot_history(result.history, out / "training.png",
                 title=f"{args.method} on {where} ({keras.backend.backend()})")
    exported += ["summary.json", "history.json", "training.png"]
    print(f"\n{'held-out score':<28}{'value':>10}")
    for key, value in result.scores.items():
        print(f"{key:<28}{value:>10.4f}")
    if result.downstream:
        print(f"\n{'which-document task':<28}{'pretrained':>11}{'random init':>13}")
        for key, value in result.downstream["pretrained"].items():
            print(f"{key + ' accuracy':<28}{value:>11.3f}"
                  f"{result.downstream['random_init'][key]:>13.3f}")
    for sample in result.samples:
        print(f"\ngenerated: {sample!r}")
    print(
        f"\ntrained {result.train_seconds:.0f} s, total "
        f"{summary['total_seconds']:.0f} s, peak memory "
        f"{summary['peak_memory_gib']:.2f} GiB"
    )
    print(f"wrote {', '.join(exported)} to {out}/")
    return 0


def _zero_shot(args):
    path = pathlib.Path(args.model)
    if not path.exists():
        return _fail(
            f"no model at {path}: train one with `keras-ssl pretrain clip` "
            "or pass --model"
        )
    import numpy as np

    import keras_ssl
    from keras_ssl.evaluation import DIGIT_TEMPLATES, ZeroShotClassifier

    model = keras_ssl.load_model(path)
    try:
        data = _load_image_text(args)
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


def _load_speech(args, labelled):
    """`(where, corpus)`: the embedded spoken corpus, or a folder of .wav
    files as a corpus (a seeded tenth held out as its test split)."""
    from keras_ssl.datasets import load_spoken_corpus

    if args.audio is None:
        minutes = getattr(args, "labelled_minutes", 10.0)
        pretrain = getattr(args, "pretrain_minutes", 60.0)
        return "the embedded spoken corpus", load_spoken_corpus(
            pretrain_minutes=pretrain, labelled_minutes=minutes, verbose=1)
    if not args.audio.startswith("folder:"):
        raise ValueError(f"--audio must be folder:PATH; got {args.audio!r}")
    import numpy as np

    from keras_ssl.data import load_audio_folder
    from keras_ssl.datasets import SpeechCorpus, SpeechSplit

    path = args.audio[len("folder:"):]
    data = load_audio_folder(path)
    if labelled and data.transcripts is None:
        raise ValueError(
            f"{path} has no transcripts (transcripts.tsv, or NAME.txt beside "
            "NAME.wav): CTC fine-tuning needs them")
    transcripts = data.transcripts or [""] * len(data.audio)
    order = np.random.default_rng(0).permutation(len(data.audio))
    cut = max(1, len(order) // 10)

    def split(indices):
        return SpeechSplit([data.audio[i] for i in indices],
                           [transcripts[i] for i in indices],
                           [path] * len(indices))

    train, test = split(order[cut:]), split(order[:cut])
    return path, SpeechCorpus(pretrain=train, labelled=train, test=test)


def _pretrain_wav2vec2(args):
    from keras_ssl import speech

    overrides = {"steps": args.steps, "batch_size": args.batch_size,
                 "curriculum_steps": args.curriculum_steps,
                 "learning_rate": args.learning_rate, "seed": args.seed}
    try:
        config = speech.SpeechConfig(
            **{k: v for k, v in overrides.items() if v is not None})
        if args.paper_objective:
            config = speech.paper_objective(config)
        where, corpus = _load_speech(args, labelled=False)
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error).splitlines()[0])

    import keras

    out = pathlib.Path(args.out or "runs/wav2vec2-speech")
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"keras-ssl: wav2vec2 on {where} ({corpus.pretrain.minutes:.1f} min, "
        f"{len(corpus.pretrain)} utterances), {config.num_layers} layers × "
        f"{config.hidden_dim}, {config.curriculum_steps} curriculum + "
        f"{config.steps} steps of {config.batch_size} utterances, backend "
        f"{keras.backend.backend()}"
    )
    start = time.perf_counter()
    try:
        result = speech.pretrain_wav2vec2(
            corpus, config, callbacks=_backup_callbacks(args, out),
            verbose=0 if args.quiet else 2)
    except ValueError as error:
        return _fail(str(error).splitlines()[0])
    model = result.model
    model.save(out / "model.keras")
    model.encoder.save(out / "encoder.keras")
    model.encoder.save_to_preset(str(out / "backbone_preset"))
    summary = {
        "method": "wav2vec2", "audio": where,
        "backend": keras.backend.backend(),
        "config": dataclasses.asdict(config),
        "train_seconds": round(result.seconds, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
        "peak_memory_gib": round(_peak_memory_gib(), 2),
        "held_out": {k: float(v) for k, v in result.scores.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "history.json").write_text(json.dumps({"history": result.history}))
    from keras_ssl.evaluation import plot_history

    plot_history(result.history, out / "training.png",
                 title=f"wav2vec 2.0 on {where} ({keras.backend.backend()})")
    print(f"\n{'held-out objective':<28}{'value':>10}")
    for key in ("contrastive_loss", "accuracy", "code_perplexity", "diversity_loss"):
        if key in result.scores:
            print(f"{key:<28}{float(result.scores[key]):>10.4f}")
    print(f"\ntrained {result.seconds:.0f} s, peak memory "
          f"{summary['peak_memory_gib']:.2f} GiB")
    print(f"wrote model.keras, encoder.keras, backbone_preset/, summary.json, "
          f"history.json, training.png to {out}/")
    print(f"next: keras-ssl finetune ctc --encoder {out / 'encoder.keras'}")
    return 0


def _finetune_ctc(args):
    from keras_ssl import speech

    overrides = {"finetune_steps": args.steps,
                 "finetune_learning_rate": args.learning_rate, "seed": args.seed}
    try:
        config = speech.SpeechConfig(
            **{k: v for k, v in overrides.items() if v is not None})
        if args.encoder != "random" and not pathlib.Path(args.encoder).exists():
            raise FileNotFoundError(
                f"no encoder at {args.encoder}: pretrain one with `keras-ssl "
                "pretrain wav2vec2`, or pass --encoder random")
        where, corpus = _load_speech(args, labelled=True)
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error).splitlines()[0])

    import keras

    import keras_ssl

    if args.encoder == "random":
        keras.utils.set_random_seed(config.seed + 2)
        encoder = speech.build_backbone(config)
    else:
        encoder = keras_ssl.load_model(args.encoder)
    out = pathlib.Path(args.out or "runs/ctc-speech")
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"keras-ssl: CTC fine-tuning of {args.encoder} on {where} "
        f"({corpus.labelled.minutes:.1f} min labelled, test "
        f"{corpus.test.minutes:.1f} min), {config.finetune_steps} steps, "
        f"backend {keras.backend.backend()}"
    )
    try:
        result = speech.finetune_ctc(encoder, corpus, config,
                                     verbose=0 if args.quiet else 2, examples=5)
    except ValueError as error:
        return _fail(str(error).splitlines()[0])
    result.model.save(out / "model.keras")
    scores = result.scores
    summary = {
        "task": "ctc", "encoder": args.encoder, "audio": where,
        "backend": keras.backend.backend(),
        "config": dataclasses.asdict(config),
        "train_seconds": round(result.seconds, 1),
        "labelled_minutes": scores["labelled_minutes"],
        "cer": scores["cer"], "wer": scores["wer"],
        "examples": scores["examples"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "history.json").write_text(json.dumps({"history": result.history}))
    from keras_ssl.evaluation import plot_history

    plot_history(result.history, out / "training.png",
                 title=f"CTC fine-tuning ({keras.backend.backend()})")
    print(f"\ntest CER {scores['cer']:.3f}, WER {scores['wer']:.3f} "
          f"({scores['labelled_minutes']:.1f} labelled minutes)")
    for truth, heard in scores["examples"]:
        print(f"  truth: {truth}\n  heard: {heard}")
    print(f"wrote model.keras, summary.json, history.json, training.png to {out}/")
    return 0

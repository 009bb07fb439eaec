"""wav2vec 2.0 on the embedded spoken corpus: does pre-training lower the
character error rate of CTC fine-tuning from a few minutes of labels?

    KERAS_BACKEND=torch python benchmarks/speech_quality.py \\
        [--steps 3000] [--finetune-steps 4000] [--labelled-minutes 10] \\
        [--json PATH] [--plot PNG] [--save-encoder DIR | --encoder FILE] \\
        [--arms pretrained,random_init]

1. Pre-trains `keras_ssl.models.Wav2Vec2` (the small backbone of
   `keras_ssl.speech.SpeechConfig`) on the corpus' unlabelled pool (60
   minutes of eSpeak NG speech of the language reference, 12 voice
   variants, rooms and noise) for `--steps` optimizer steps of batches of
   8 utterances, with the recipe's objective: continuous targets and spans
   of 3 (`--config "..."` changes any `SpeechConfig` field; the paper's
   objective is `quantize_targets=True, mask_length=10, mask_prob=0.065`,
   after a curriculum stage `curriculum_steps=1500` here).
2. Fine-tunes with CTC on the labelled subset (`--labelled-minutes`, other
   sentences, same voices) for `--finetune-steps` steps, twice: from the
   pre-trained encoder and from the same architecture at random init, with
   the same labels, steps, schedule and seed (`--arms pretrained` runs only
   the first: the random-init arm does not depend on the pre-training, so
   an earlier run's figure stands). `--labelled-minutes 1,2,10`
   repeats this for each budget (each a prefix of the largest,
   `SpeechCorpus.with_labelled_minutes`) after one pre-training, and
   `--plot` draws CER against labelled minutes for both encoders.
3. Scores both on the held-out test split (5 voice variants and sentences
   never seen in training): character and word error rate of greedy CTC
   decoding, and prints a few transcripts next to the truth.

It prints a Markdown table; `--json` also writes the figures to a file.
Torch is the default backend because it is the fastest here on 2 CPU cores
(it runs eagerly, so the length buckets cost no recompilation).
"""

import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


STANDARD_LABELLED_MINUTES = 10.0


def minutes_list(text):
    """`"1,2,10"` -> `[1.0, 2.0, 10.0]` (positive, in increasing order)."""
    values = sorted({float(part) for part in text.split(",") if part.strip()})
    if not values or values[0] <= 0:
        raise argparse.ArgumentTypeError(
            f"expected positive minutes, comma-separated; got {text!r}")
    return values


def arms_list(text):
    """`"pretrained"` -> `("pretrained",)`; the arms to fine-tune, checked
    here so that a typo fails before the pre-training, not after it."""
    from keras_ssl.speech import ARMS

    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in ARMS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(ARMS)}; got {text!r}")
    return tuple(name for name in ARMS if name in names)


def plot_budgets(budgets, path):
    """CER of both encoders against the labelled minutes, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [row["labelled_minutes"] for row in budgets]
    figure, axis = plt.subplots(figsize=(5, 3.6))
    for name, style in (("pretrained", "o-"), ("random_init", "s--")):
        if name not in budgets[0]:
            continue
        axis.plot(minutes, [row[name]["cer"] for row in budgets], style,
                  label=name.replace("_", " "))
    axis.set_xscale("log")
    axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axis.set_xticks(minutes, [f"{m:.1f}" for m in minutes])
    axis.set_xlabel("labelled minutes")
    axis.set_ylabel("test CER (greedy)")
    axis.set_title("wav2vec 2.0: CTC fine-tuning, pre-trained vs random init",
                   fontsize=9)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None,
                        help="pre-training steps (default: SpeechConfig's, 3000)")
    parser.add_argument("--finetune-steps", type=int, default=4000)
    parser.add_argument("--labelled-minutes", type=minutes_list, default=[10.0],
                        help="labelled budget(s), comma-separated: 1,2,10")
    parser.add_argument("--pretrain-minutes", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default="",
                        help="SpeechConfig overrides, e.g. 'gumbel_noise=False, "
                        "diversity_weight=0.2'")
    parser.add_argument("--json", default=None)
    parser.add_argument("--plot", default=None,
                        help="PNG of CER against labelled minutes")
    parser.add_argument("--save-encoder", default=None,
                        help="folder for the pre-trained encoder (.keras)")
    parser.add_argument("--encoder", default=None,
                        help="skip pre-training: fine-tune this saved encoder")
    parser.add_argument("--arms", type=arms_list, default="pretrained,random_init",
                        help="which fine-tunings to run: pretrained,random_init")
    args = parser.parse_args(argv)

    import keras

    from keras_ssl import speech
    from keras_ssl.datasets import load_spoken_corpus

    # Budgets of 10 minutes or less are prefixes of the standard 10-minute
    # labelled split: the pre-training pool and the test set stay those of
    # the default run (so its saved encoder can be reused with --encoder).
    corpus = load_spoken_corpus(
        pretrain_minutes=args.pretrain_minutes,
        labelled_minutes=max(args.labelled_minutes + [STANDARD_LABELLED_MINUTES]))
    overrides = eval(f"dict({args.config})", {})
    if args.steps is not None:
        overrides["steps"] = args.steps
    config = speech.SpeechConfig(finetune_steps=args.finetune_steps,
                                 seed=args.seed, **overrides)
    print(f"backend {keras.backend.backend()}; {corpus}", flush=True)
    if args.encoder:
        import keras_ssl

        encoder = keras_ssl.load_model(args.encoder)
        pretrained = speech.SpeechResult(None, {}, float("nan"), {})
    else:
        pretrained = speech.pretrain_wav2vec2(corpus, config, verbose=2)
        encoder = pretrained.model.encoder
    if args.save_encoder:
        os.makedirs(args.save_encoder, exist_ok=True)
        encoder.save(os.path.join(args.save_encoder, "encoder.keras"))
    report = {
        "backend": keras.backend.backend(),
        "config": speech.dataclasses.asdict(config),
        "parameters": int(encoder.count_params()),
        "pretrain_minutes": corpus.pretrain.minutes,
        "test_minutes": corpus.test.minutes,
        "pretrain_seconds": pretrained.seconds,
        "pretrain_objective": {k: float(v) for k, v in pretrained.scores.items()},
        "budgets": [],
    }
    for minutes in args.labelled_minutes:
        budget = corpus.with_labelled_minutes(minutes)
        runs = speech.compare_with_random_init(budget, encoder, config, verbose=2,
                                               arms=args.arms)
        row = {"labelled_minutes": budget.labelled.minutes,
               "labelled_utterances": len(budget.labelled)}
        for name, run in runs.items():
            row[name] = {
                "cer": run.scores["cer"], "wer": run.scores["wer"],
                "finetune_seconds": run.seconds,
                "final_ctc_loss": float(run.history["loss"][-1]),
                "examples": run.scores["examples"],
            }
        report["budgets"].append(row)
    objective = report["pretrain_objective"]
    print(f"\nwav2vec 2.0 pre-training: {config.curriculum_steps} curriculum + "
          f"{config.steps} steps of 8 utterances on "
          f"{corpus.pretrain.minutes:.1f} min of unlabelled speech, "
          f"{pretrained.seconds / 60:.1f} min; held-out contrastive accuracy "
          f"{objective.get('accuracy', float('nan')):.3f}, code perplexity "
          f"{objective.get('code_perplexity', float('nan')):.1f}")
    print(f"\nCTC fine-tuning: {args.finetune_steps} steps; test split "
          f"{corpus.test.minutes:.1f} min (unseen voices and sentences)\n")
    print("| labelled min | CER pretrained | CER random init | WER pretrained | "
          "WER random init | fine-tune min (pretrained, random) |")
    print("|---|---|---|---|---|---|")

    def cell(row, name, key, scale=1.0, digits=3):
        return f"{row[name][key] / scale:.{digits}f}" if name in row else "not run"

    for row in report["budgets"]:
        print(f"| {row['labelled_minutes']:.1f} | {cell(row, 'pretrained', 'cer')} | "
              f"{cell(row, 'random_init', 'cer')} | {cell(row, 'pretrained', 'wer')} | "
              f"{cell(row, 'random_init', 'wer')} | "
              f"{cell(row, 'pretrained', 'finetune_seconds', 60, 1)}, "
              f"{cell(row, 'random_init', 'finetune_seconds', 60, 1)} |")
    for row in report["budgets"]:
        for name in args.arms:
            print(f"\n{name}, {row['labelled_minutes']:.1f} labelled min:")
            for truth, hypothesis in row[name]["examples"]:
                print(f"  truth: {truth}\n  heard: {hypothesis}")
    if args.plot:
        plot_budgets(report["budgets"], args.plot)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()

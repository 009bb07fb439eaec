"""BERT, RoBERTa, GPT and T5 on the embedded corpus: what each learns, and
whether pretraining beats random initialisation on a real labelled task.

    KERAS_BACKEND=tensorflow python benchmarks/language_quality.py \\
        [--methods bert,roberta,gpt,t5] [--steps 2500] [--fine-tune-epochs 0] \\
        [--optimizer adamw|adafactor] [--learning-rate 2e-3]

Every method gets the same model size (2 layers × 64, 4 heads, feed-forward
256), the same 2,000-token vocabulary size, the same compute (`--steps`
optimizer steps of 32 × 128 tokens) and the same seed; each runs
`keras_ssl.language.pretrain_language` (`keras-ssl pretrain METHOD` computes
the same numbers) in its own process, one after the other. It prints
Markdown tables:

1. the objective on held-out paragraphs: masked-token accuracy (BERT,
   RoBERTa; BERT's NSP accuracy), perplexity against the smoothed unigram
   baseline (GPT), target-token accuracy (T5) and how much the T5 decoder
   reads its encoder (`encoder_gain`: held-out nats per target token lost
   when each example gets another example's encoder input);
2. the downstream task, which of the 16 largest documents of the language
   reference a held-out paragraph comes from: a linear probe on the frozen
   mean-pooled features (and fine-tuning with `--fine-tune-epochs`), the
   pretrained backbone against the same architecture at random init, on the
   same labelled paragraphs. BERT against RoBERTa is the issue's comparison
   of the two recipes at equal size and compute.

With `--json PATH` the figures are also written to a file.
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

OBJECTIVES = {
    "bert": ["test_mlm_accuracy", "test_nsp_accuracy"],
    "roberta": ["test_mlm_accuracy"],
    "gpt": ["test_perplexity", "unigram_perplexity", "test_accuracy"],
    "t5": ["test_accuracy", "encoder_gain"],
}


def run_one(method, steps, fine_tune_epochs, seed, optimizer=None,
            learning_rate=None):
    import dataclasses
    import time

    import keras

    from keras_ssl.language import LanguageConfig, pretrain_language

    overrides = {k: v for k, v in (("optimizer", optimizer),
                                   ("learning_rate", learning_rate))
                 if v is not None}
    config = LanguageConfig(method=method, steps=steps, seed=seed,
                            fine_tune_epochs=fine_tune_epochs, **overrides)
    start = time.perf_counter()
    result = pretrain_language(config=config, verbose=2)
    return {
        "method": method,
        "backend": keras.backend.backend(),
        "config": dataclasses.asdict(config),
        "parameters": int(result.model.encoder.count_params()),
        "train_seconds": result.train_seconds,
        "total_seconds": time.perf_counter() - start,
        "scores": result.scores,
        "downstream": result.downstream,
        "samples": result.samples,
        "final_loss": result.history["loss"][-1],
        "history": result.history,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="bert,roberta,gpt,t5")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--fine-tune-epochs", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--optimizer", choices=("adamw", "adafactor"), default=None,
                        help="default: LanguageConfig's (adamw)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="default: LanguageConfig's (2e-3)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:  # a child process: one method, its figures on the last line
        figures = run_one(args.one, args.steps, args.fine_tune_epochs, args.seed,
                          args.optimizer, args.learning_rate)
        print("FIGURES " + json.dumps(figures))
        return figures

    results = []
    for method in args.methods.split(","):
        child = subprocess.run(
            [sys.executable, __file__, "--one", method, "--steps", str(args.steps),
             "--fine-tune-epochs", str(args.fine_tune_epochs),
             "--seed", str(args.seed)]
            + (["--optimizer", args.optimizer] if args.optimizer else [])
            + (["--learning-rate", str(args.learning_rate)]
               if args.learning_rate is not None else []),
            capture_output=True, text=True, check=False,
        )
        lines = [l for l in child.stdout.splitlines() if l.startswith("FIGURES ")]
        if child.returncode or not lines:
            sys.stderr.write(child.stdout[-3000:] + child.stderr[-3000:])
            raise SystemExit(f"{method} failed (exit {child.returncode})")
        results.append(json.loads(lines[-1][len("FIGURES "):]))
        r = results[-1]
        print(f"{method}: {r['train_seconds'] / 60:.1f} min, final loss "
              f"{r['final_loss']:.3f}", flush=True)

    first = results[0]
    c = first["config"]
    print(f"\nEmbedded corpus, {c['num_layers']} layers × {c['hidden_dim']} "
          f"({c['num_heads']} heads, feed-forward {c['intermediate_dim']}), "
          f"vocabulary {c['vocabulary_size']}, {args.steps} steps of "
          f"{c['batch_size']} × {c['sequence_length']} tokens, backend "
          f"{first['backend']}, seed {args.seed}\n")
    print("| method | encoder parameters | train min | held-out objective |")
    print("|---|---|---|---|")
    for r in results:
        objective = ", ".join(
            f"{k.replace('test_', '')} {r['scores'][k]:.3f}"
            for k in OBJECTIVES[r["method"]] if k in r["scores"]
        )
        print(f"| {r['method']} | {r['parameters']:,} | "
              f"{r['train_seconds'] / 60:.1f} | {objective} |")
    kinds = [k for k in ("probe", "probe_cls", "fine_tune")
             if any(k in r["downstream"]["pretrained"] for r in results)]
    print("\nWhich-document task (16 classes, 150 held-out paragraphs):\n")
    print("| method | " + " | ".join(
        f"{k} pretrained | {k} random init" for k in kinds) + " |")
    print("|---|" + "---|---|" * len(kinds))
    for r in results:
        d = r["downstream"]
        print(f"| {r['method']} | " + " | ".join(
            f"{d['pretrained'][k]:.3f} | {d['random_init'][k]:.3f}"
            if k in d["pretrained"] else "– | –" for k in kinds
        ) + " |")
    for r in results:
        for sample in r["samples"]:
            print(f"\n{r['method']} sample: {sample!r}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()

"""Each shipped application against the same architecture at random
initialisation, on the downstream task its test in
`tests/test_applications_registry.py` uses:

- simclr_digits, clip_digits: linear probe of the frozen, pooled backbone on
  the embedded digits (1,346 labelled scans → 451 unseen; CLIP: half of its
  held-out captioned digits → the other half);
- gpt_python_docs, roberta_python_docs: probe of which of 16 documents of the
  held-out language reference a paragraph comes from;
- wav2vec2_speech: a linear CTC head on the frozen frames, trained on the
  spoken corpus' 10 labelled minutes, character error rate on 5 minutes of
  unseen voices and sentences (lower is better).

    KERAS_BACKEND=torch python benchmarks/applications.py [--names ...]

Each application runs under the backend it was trained with (its record's
`backend`); the script re-executes itself per backend. Prints a Markdown
table.
"""

import argparse
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _vision(app):
    from keras_ssl.data import load_image_data, load_image_text_data
    from keras_ssl.evaluation import extract_features, linear_probe_accuracy

    if app.name == "clip_digits":
        pairs = load_image_text_data("digits")
        half = len(pairs.x_test) // 2
        split = (pairs.x_test[:half], pairs.y_test[:half], pairs.x_test[half:],
                 pairs.y_test[half:])
    else:
        d = load_image_data("digits")
        split = (d.x_train, d.y_train, d.x_test, d.y_test)

    def score(backbone):
        x_train, y_train, x_test, y_test = split
        return linear_probe_accuracy(extract_features(backbone, x_train), y_train,
                                     extract_features(backbone, x_test), y_test)

    return "linear probe accuracy", score


def _language(app):
    from keras_ssl.evaluation.text import text_classification_scores
    from keras_ssl.language import downstream_corpus

    corpus = downstream_corpus()
    tokenizer = app.load_tokenizer()
    train = corpus.labelled_paragraphs("train", num_classes=16)
    test = corpus.labelled_paragraphs("test", num_classes=16)

    def score(backbone):
        return text_classification_scores(backbone, tokenizer, *train, *test,
                                          sequence_length=128)["probe"]

    return "document probe accuracy", score


def _speech(app):
    from keras_ssl.datasets import load_spoken_corpus
    from keras_ssl.evaluation import ctc_probe_error_rates

    corpus = load_spoken_corpus(verbose=0)

    def score(backbone):
        return ctc_probe_error_rates(backbone, corpus.labelled, corpus.test)["cer"]

    return "linear CTC probe CER (lower is better)", score


def run(names):
    from keras_ssl import applications
    from keras_ssl.evaluation.text import random_init_like

    for name in names:
        app = applications.get(name)
        task = {"vision": _vision, "image-text": _vision, "language": _language,
                "speech": _speech}[app.modality]
        what, score = task(app)
        backbone = app.load()
        pretrained, random_init = score(backbone), score(random_init_like(backbone))
        size = sum(f.stat().st_size for f in app.weights.rglob("*") if f.is_file())
        print(f"| {name} | {app.backend} | {app.record['train_minutes']} | "
              f"{size / 2**20:.1f} | {what} | **{pretrained:.3f}** | {random_init:.3f} |",
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="*", default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run(args.names)
    from keras_ssl.applications import registry

    names = args.names or registry.list(embedded=True)
    print("| application | backend | train min | MB | downstream task | pretrained "
          "| random init |\n|---|---|---|---|---|---|---|", flush=True)
    for name in names:  # each under its own backend, in its own process
        backend = registry.get(name).backend
        subprocess.run([sys.executable, __file__, "--child", "--names", name],
                       env={**os.environ, "KERAS_BACKEND": backend}, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

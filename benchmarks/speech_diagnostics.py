"""Why wav2vec 2.0 pre-training does not learn on the embedded corpus: short
probes of the optimisation, each a few hundred steps.

    KERAS_BACKEND=torch python benchmarks/speech_diagnostics.py \\
        [--steps 200] [--probes NAME,NAME] [--json PATH]

Every probe builds the small `Wav2Vec2` of `keras_ssl.speech.SpeechConfig`
(with the probe's overrides), trains it with plain Adam on batches of 8
utterances of the corpus' unlabelled pool, and reports the contrastive loss
(chance: ln(K + 1) = 4.615 for K = 100 distractors), the contrastive accuracy
(chance about 0.01) and the mean cosine between the context vectors of
different frames after training (near 1: the context network outputs one
constant vector, whatever the audio).

The probes separate three questions:

- can the model fit anything (`one_batch_*`: the same 8 utterances every
  step, fresh masks and distractors; it can memorise the targets);
- does it learn the easiest version of the task on real data
  (`fresh_single_frames*`: fresh batches, 30% of single frames masked, the
  neighbouring frames visible, continuous targets, so nothing can collapse
  to win);
- the paper's task (`fresh_paper`: quantised targets, spans of 10);
- what the small recipe's curriculum stage trains first
  (`fresh_spans3_group_norm`: continuous targets, spans of 3, BASE's group
  norm), and its neighbours (quantised targets, full feature-encoder
  gradient).

Before the probes it measures whether the targets can be predicted from
their neighbours at all (`frame_locality`): the cosine between the centred
latent frames `z` of adjacent frames against random pairs of frames of the
same utterance, for the randomly initialised feature encoder and, for
comparison, for the log magnitude spectrum of the same 25 ms windows.

It prints Markdown tables; `--json` also writes the figures.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

# Continuous targets, 30% of frames masked one by one: the answer is next
# to every masked frame.
SINGLE_FRAMES = dict(quantize_targets=False, mask_length=1, mask_prob=0.3)

PROBES = {
    "one_batch_lr1e-3": dict(fixed_batch=True, learning_rate=1e-3,
                             config=SINGLE_FRAMES),
    "one_batch_lr3e-4": dict(fixed_batch=True, learning_rate=3e-4,
                             config=SINGLE_FRAMES),
    "one_batch_spans_lr3e-4": dict(fixed_batch=True, learning_rate=3e-4,
                                   config=dict(quantize_targets=False)),
    "fresh_single_frames": dict(fixed_batch=False, learning_rate=3e-4,
                                config=SINGLE_FRAMES),
    "fresh_single_frames_kappa1": dict(fixed_batch=False, learning_rate=3e-4,
                                       config=SINGLE_FRAMES,
                                       contrastive_temperature=1.0),
    "fresh_single_frames_prenorm": dict(
        fixed_batch=False, learning_rate=3e-4,
        config=dict(SINGLE_FRAMES, layer_norm_first=True)),
    "fresh_single_frames_weight_norm": dict(
        fixed_batch=False, learning_rate=3e-4,
        config=dict(SINGLE_FRAMES, pos_conv_weight_norm=True)),
    "fresh_paper": dict(fixed_batch=False, learning_rate=3e-4, config={}),
    # BASE's feature normalisation: a group norm (one group per channel,
    # over time) after the first convolution only, instead of a layer norm
    # in every block.
    "fresh_single_frames_group_norm": dict(
        fixed_batch=False, learning_rate=3e-4,
        config=dict(SINGLE_FRAMES, feature_norm="group")),
    "fresh_paper_group_norm": dict(fixed_batch=False, learning_rate=3e-4,
                                   config=dict(feature_norm="group")),
    "fresh_spans_group_norm": dict(
        fixed_batch=False, learning_rate=3e-4,
        config=dict(quantize_targets=False, feature_norm="group")),
    # Between single frames and the paper's spans: shorter spans, full
    # gradient into the feature encoder, quantised single-frame targets.
    "fresh_spans3_group_norm": dict(
        fixed_batch=False, learning_rate=3e-4,
        config=dict(quantize_targets=False, feature_norm="group",
                    mask_length=3, mask_prob=0.15)),
    "fresh_spans3_group_norm_quantized": dict(
        fixed_batch=False, learning_rate=3e-4,
        config=dict(feature_norm="group", mask_length=3, mask_prob=0.15)),
    "fresh_single_frames_group_norm_grad1": dict(
        fixed_batch=False, learning_rate=3e-4,
        config=dict(SINGLE_FRAMES, feature_norm="group",
                    feature_grad_mult=1.0)),
    "fresh_single_frames_group_norm_quantized": dict(
        fixed_batch=False, learning_rate=3e-4,
        config=dict(SINGLE_FRAMES, feature_norm="group",
                    quantize_targets=True)),
    # The control: masked frames are scored but left visible (not replaced
    # by the mask embedding), with the feature encoder and the target
    # projection frozen, so `z_t` itself is in the input.
    "fresh_single_frames_visible": dict(
        fixed_batch=False, learning_rate=3e-4,
        config=dict(SINGLE_FRAMES, feature_penalty_weight=0.0),
        frozen=("feature_encoder", "target_projection"), visible=True),
}


def _unit_rows(frames):
    """`frames (N, D)` as float64 rows of unit length."""
    import numpy as np

    frames = np.asarray(frames, "float64")
    return frames / np.maximum(np.linalg.norm(frames, axis=1, keepdims=True), 1e-12)


def mean_pairwise_cosine(frames, mask, samples=300, seed=0):
    """The mean cosine similarity between `samples` random real frames of
    `frames (B, T, D)` (`mask (B, T)` marks the real ones), pairs of distinct
    frames only."""
    import numpy as np

    frames = _unit_rows(np.asarray(frames)[np.asarray(mask, bool)])
    rng = np.random.default_rng(seed)
    picked = frames[rng.choice(len(frames), min(samples, len(frames)), replace=False)]
    similarity = picked @ picked.T
    upper = np.triu_indices(len(picked), 1)
    return float(similarity[upper].mean())


def adjacent_and_random_cosine(frames, seed=0, pairs=200):
    """`(adjacent, random)`: the mean cosine between consecutive rows of
    `frames (T, D)` and between `pairs` random pairs of rows, after
    subtracting the mean row."""
    import numpy as np

    frames = np.asarray(frames, "float64")
    frames = _unit_rows(frames - frames.mean(axis=0))
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(frames), (2, pairs))
    keep = i != j
    adjacent = float((frames[:-1] * frames[1:]).sum(axis=1).mean())
    random = float((frames[i[keep]] * frames[j[keep]]).sum(axis=1).mean())
    return adjacent, random


def frame_locality(corpus, utterances=8, seed=0):
    """How much a frame looks like its neighbour, for the latent frames `z`
    of randomly initialised feature encoders (the small recipe's layer norm
    in every block, and BASE's group norm after the first convolution) and
    for the log magnitude spectrum of the same windows (400 samples, hop
    320)."""
    import keras
    import numpy as np
    from keras import ops

    from keras_ssl.speech import SpeechConfig, build_backbone

    encoders = {}
    for norm in ("layer", "group"):
        keras.utils.set_random_seed(seed)
        encoders[f"latent z, random-init encoder, feature_norm={norm!r}"] = (
            build_backbone(SpeechConfig(seed=seed, feature_norm=norm)))
    first = next(iter(encoders.values()))  # both share the convolutions
    hop, window = first.frame_stride, first.receptive_field
    rows = {name: [] for name in encoders}
    rows["log magnitude spectrum"] = []
    for audio in corpus.pretrain.audio[:utterances]:
        audio = np.asarray(audio, "float32")
        for name, encoder in encoders.items():
            _, z, _ = encoder.latent_frames(
                audio[None], np.ones((1, audio.size), bool))
            rows[name].append(
                adjacent_and_random_cosine(ops.convert_to_numpy(z)[0], seed))
        count = (audio.size - window) // hop + 1
        windows = np.stack([audio[k * hop:k * hop + window] for k in range(count)])
        spectrum = np.abs(np.fft.rfft(windows * np.hanning(window), axis=1))
        rows["log magnitude spectrum"].append(
            adjacent_and_random_cosine(np.log(spectrum + 1e-3), seed))
    return {name: {"adjacent": float(np.mean([a for a, _ in values])),
                   "random_pair": float(np.mean([r for _, r in values]))}
            for name, values in rows.items()}


def run_probe(name, corpus, steps, seed=0, log_every=50):
    import keras
    from keras import ops

    from keras_ssl.data import speech_dataset
    from keras_ssl.speech import SpeechConfig, build_wav2vec2

    probe = PROBES[name]
    keras.utils.set_random_seed(seed)
    config = SpeechConfig(seed=seed, **probe["config"])
    data = iter(speech_dataset(corpus.pretrain.audio, batch_size=8, shuffle=True,
                               seed=seed, repeat=True, bucket_seconds=0.5))
    model = build_wav2vec2(config)
    if "contrastive_temperature" in probe:
        model.contrastive_temperature = float(probe["contrastive_temperature"])
    for name_ in probe.get("frozen", ()):
        layer = getattr(model, name_, None) or getattr(model.encoder, name_)
        layer.trainable = False
    if probe.get("visible"):
        project = model.encoder.project_features
        model.encoder.project_features = (
            lambda z, mask=None, training=False: project(z, None, training))
    model.compile(optimizer=keras.optimizers.Adam(probe["learning_rate"]))
    batch = next(data)
    curve, start = [], time.perf_counter()
    for step in range(steps):
        if not probe["fixed_batch"] and step:
            batch = next(data)
        logs = model.train_on_batch(batch, return_dict=True)
        if step % log_every == 0 or step == steps - 1:
            curve.append((step, float(logs["contrastive_loss"]),
                          float(logs["accuracy"])))
            print(f"{name} step {step}: contrastive loss {curve[-1][1]:.4f}, "
                  f"accuracy {curve[-1][2]:.3f}", flush=True)
    x = batch[0] if isinstance(batch, tuple) else batch
    out = model(x, training=False)
    return {
        "probe": name,
        "fixed_batch": probe["fixed_batch"],
        "learning_rate": probe["learning_rate"],
        "config": probe["config"],
        "contrastive_temperature": model.contrastive_temperature,
        "steps": steps,
        "curve": curve,
        "first_loss": curve[0][1],
        "last_loss": curve[-1][1],
        "last_accuracy": curve[-1][2],
        "context_cosine": mean_pairwise_cosine(
            ops.convert_to_numpy(out["context"]),
            ops.convert_to_numpy(out["frame_mask"])),
        "seconds": time.perf_counter() - start,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--probes", default=",".join(PROBES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.probes.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROBES]
    if unknown:
        parser.error(f"unknown probes {unknown}; choose from {list(PROBES)}")

    import keras

    from keras_ssl.datasets import load_spoken_corpus

    corpus = load_spoken_corpus()
    locality = frame_locality(corpus, seed=args.seed)
    print("\n| frames (centred) | cosine to the next frame | cosine to a random frame |")
    print("|---|---|---|")
    for name, row in locality.items():
        print(f"| {name} | {row['adjacent']:.3f} | {row['random_pair']:.3f} |")
    results = [run_probe(name, corpus, args.steps, args.seed) for name in names]
    print(f"\nwav2vec 2.0 probes, backend {keras.backend.backend()}, "
          f"{args.steps} Adam steps of 8 utterances, seed {args.seed} "
          "(chance: loss 4.615, accuracy ~0.01)\n")
    print("| probe | batches | lr | loss first → last | accuracy | "
          "context cosine | s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['probe']} | {'one, repeated' if r['fixed_batch'] else 'fresh'}"
              f" | {r['learning_rate']:g} | {r['first_loss']:.3f} → "
              f"{r['last_loss']:.3f} | {r['last_accuracy']:.3f} | "
              f"{r['context_cosine']:.3f} | {r['seconds']:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"locality": locality, "probes": results}, f, indent=2)
    return {"locality": locality, "probes": results}


if __name__ == "__main__":
    main()

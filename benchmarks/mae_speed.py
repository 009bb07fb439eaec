"""MAE's speed claim: the encoder runs on the visible patches only.

    python benchmarks/mae_speed.py [--backends tensorflow,jax,torch]
                                   [--hidden-dim 192 --num-layers 8 ...]

"Our MAE encoder operates only on the visible patches [...] This can
reduce overall pre-training time by 3× or more" (He et al., 2021, table 2:
2.8–4.1× for ViT-L/H with a light decoder). For each backend (its own
process) this times jit-compiled MAE training steps (torch: eager) on fixed
in-memory images with an encoder-heavy configuration, once at mask ratio
0.75 and once at 0.0 — the same model with every patch visible, which is
what MAE's encoder would process without masking: the encoder on all N
patch tokens, the decoder on N tokens, the loss on every patch. It prints
ms per step and the speed-up, which must be ≥ 2.5× on the fastest backend.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from _workers import BACKENDS, run_workers  # noqa: E402


def _all_patches_mae(MAE):
    from keras import ops

    class AllPatchesMAE(MAE):
        """MAE at mask ratio 0: no patch removed, the loss on all of them."""

        def encode_visible(self, images, noise=None, training=False):
            tokens = self.encoder.embed_patches(images)
            latent = self.encoder.encode_tokens(tokens, training=training)
            batch, n = ops.shape(tokens)[0], self.encoder.num_patches
            ids_restore = ops.broadcast_to(
                ops.arange(n, dtype="int32")[None], (batch, n)
            )
            return latent, ops.ones((batch, n), tokens.dtype), ids_restore

    return AllPatchesMAE


def _time_steps(model, images, args):
    import keras
    import tensorflow as tf

    model.compile(
        optimizer=keras.optimizers.AdamW(1e-4),
        jit_compile=keras.backend.backend() != "torch",
    )
    data = tf.data.Dataset.from_tensors((images,)).repeat()
    model.fit(data, steps_per_epoch=args.warmup_steps, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
    return (time.perf_counter() - start) / args.steps


def _worker(args):
    import keras
    import numpy as np

    from keras_ssl.backbones import ViTBackbone
    from keras_ssl.models import MAE

    size = args.image_size
    images = np.random.default_rng(0).random((args.batch_size, size, size, 3))
    images = images.astype("float32")
    seconds = {}
    for ratio in (0.75, 0.0):
        keras.utils.set_random_seed(0)
        encoder = ViTBackbone(
            image_shape=(size, size, 3),
            patch_size=args.patch_size,
            hidden_dim=args.hidden_dim,
            num_layers=args.num_layers,
            num_heads=args.num_heads,
        )
        cls = MAE if ratio else _all_patches_mae(MAE)
        model = cls(
            encoder,
            mask_ratio=0.75,  # unused by the all-patches variant
            decoder_dim=args.decoder_dim,
            decoder_depth=args.decoder_depth,
            decoder_num_heads=args.decoder_num_heads,
            seed=0,
        )
        seconds[str(ratio)] = _time_steps(model, images, args)
    print(json.dumps(seconds))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--patch-size", type=int, default=4)
    parser.add_argument("--hidden-dim", type=int, default=192)
    parser.add_argument("--num-layers", type=int, default=8)
    parser.add_argument("--num-heads", type=int, default=3)
    parser.add_argument("--decoder-dim", type=int, default=64)
    parser.add_argument("--decoder-depth", type=int, default=1)
    parser.add_argument("--decoder-num-heads", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--json", default=None, help="also write results here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)

    results = run_workers(
        __file__, args, args.backends.split(","),
        exclude=("worker", "backends", "json"),
    )
    patches = (args.image_size // args.patch_size) ** 2
    print(
        f"MAE training step, ViT encoder {args.hidden_dim}-d × "
        f"{args.num_layers} blocks, decoder {args.decoder_dim}-d × "
        f"{args.decoder_depth}, {patches} patches of {args.image_size}×"
        f"{args.image_size} images, batch {args.batch_size}, "
        f"{os.cpu_count()} CPU cores\n"
    )
    print("| backend | ms/step, mask 0.75 | ms/step, mask 0.0 | speed-up |")
    print("|---|---|---|---|")
    for backend, s in results.items():
        print(
            f"| {backend} | {1e3 * s['0.75']:.0f} | {1e3 * s['0.0']:.0f} | "
            f"{s['0.0'] / s['0.75']:.2f}× |"
        )
    fastest = min(results, key=lambda b: results[b]["0.75"])
    speedup = results[fastest]["0.0"] / results[fastest]["0.75"]
    print(
        f"\nfastest backend at mask 0.75: {fastest}, speed-up {speedup:.2f}× "
        f"({'meets' if speedup >= 2.5 else 'MISSES'} the ≥ 2.5× bar)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

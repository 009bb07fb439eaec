"""BEiT recipes: the paper's ViT-B/16 ImageNet setup, and the small embedded-data one.

    python applications/beit.py                   # embedded digits, CPU, ~10 min
    python applications/beit.py --recipe imagenet --dataset tfds:imagenet2012 \
        --data-dir ~/tensorflow_datasets          # the paper's setup (needs GPUs)

Both train the visual tokenizer first (stage 1, a `VQTokenizer` with one
code per 16-px patch), then BEiT (stage 2).

The paper's recipe (Bao et al., 2021, section 2 and appendix C): ViT-B/16
on 224-px images, the 8192-token dVAE of DALL-E as tokenizer (not
downloadable here: our VQ-VAE with 8192 codes takes its place), blockwise
masking of 40% of the 196 patches (75) in blocks of at least 16 patches
with aspect ratios 0.3–1/0.3; AdamW with β = (0.9, 0.999), weight decay
0.05, learning rate 1.5e-3 at batch 2048, 10 warmup epochs then cosine
decay over 800 epochs; random resized crops, horizontal flips and colour
jitter. Layer scale and relative position bias are not implemented.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def digits():
    """The CLI's default: `keras-ssl pretrain beit`."""
    from keras_ssl.training import PretrainConfig

    return PretrainConfig(method="beit")


def imagenet():
    """The paper's ViT-B/16 recipe (batch 2048, AdamW, 800 epochs)."""
    from keras_ssl.training import PretrainConfig

    return PretrainConfig(
        method="beit",
        backbone="vit_base16",
        epochs=800,
        batch_size=2048,
        optimizer="adamw",
        learning_rate=1.5e-3,
        weight_decay=0.05,
        beta_2=0.999,
        warmup_epochs=10,
        crop_scale=(0.08, 1.0),
        knn_every=50,
        fine_tune_epochs=100,
        method_options=dict(
            mask_ratio=0.4,
            # min_block_patches: None scales the paper's 16 of 196 patches
            # to the grid, which is 16 on ViT-B/16's 14×14 grid at 224 px.
            tokenizer_epochs=100,
            tokenizer_options=dict(num_codes=8192, code_dim=32, hidden_dim=128),
        ),
    )


RECIPES = {"digits": digits, "imagenet": imagenet}

if __name__ == "__main__":
    from run_recipe import main

    main(RECIPES, "beit")

"""MAE recipes: the paper's ViT-B/16 ImageNet setup, and the small embedded-data one.

    python applications/mae.py                    # embedded digits, CPU, ~10 min
    python applications/mae.py --recipe imagenet --dataset tfds:imagenet2012 \
        --data-dir ~/tensorflow_datasets          # the paper's setup (needs GPUs)

The paper's recipe (He et al., 2021, appendix A.1, table 8): ViT-B/16 on
224-px images, 75% random masking, a decoder of 8 blocks 512 wide with 16
heads, normalised-pixel targets; AdamW with β = (0.9, 0.95), weight decay
0.05, base learning rate 1.5e-4 scaled by batch / 256 (batch 4096), 40
warmup epochs then cosine decay over 800 epochs (1600 in the best runs);
random resized crops of 20–100% and horizontal flips only. Fine-tuning uses
100 epochs (ViT-B) with layer-wise learning-rate decay 0.65, which
`fine_tune_accuracy` does not implement.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def digits():
    """The CLI's default: `keras-ssl pretrain mae`."""
    from keras_ssl.training import PretrainConfig

    return PretrainConfig(method="mae")


def imagenet():
    """The paper's ViT-B/16 recipe (batch 4096, AdamW, 800 epochs)."""
    from keras_ssl.training import PretrainConfig

    batch_size = 4096
    return PretrainConfig(
        method="mae",
        backbone="vit_base16",
        epochs=800,
        batch_size=batch_size,
        optimizer="adamw",
        learning_rate=1.5e-4 * batch_size / 256,
        weight_decay=0.05,
        beta_2=0.95,
        warmup_epochs=40,
        crop_scale=(0.2, 1.0),
        knn_every=50,
        fine_tune_epochs=100,
        method_options=dict(
            mask_ratio=0.75,
            decoder_dim=512,
            decoder_depth=8,
            decoder_num_heads=16,
            norm_pix_loss=True,
        ),
    )


RECIPES = {"digits": digits, "imagenet": imagenet}

if __name__ == "__main__":
    from run_recipe import main

    main(RECIPES, "mae")

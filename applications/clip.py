"""CLIP recipes: the paper's ViT-B/32 setup, and the small embedded-data one.

    python applications/clip.py                     # embedded captioned digits, CPU
    python applications/clip.py --recipe paper --dataset tfds:coco_captions \\
        --data-dir ~/tensorflow_datasets            # ViT-B/32 (needs accelerators)

The paper's recipe (Radford et al., 2021, section 2.5 and tables 19-20):
ViT-B/32 image encoder on 224-px images; a 12-layer, 512-wide Transformer
with 8 heads over lower-cased byte-pair tokens (49,152 vocabulary, 76
tokens plus [EOT]), causal mask, the [EOT] feature; a 512-d shared space;
learnable temperature from 0.07 with the logit scale clipped at 100;
Adam(W) with β = (0.9, 0.98), ε = 1e-6, decoupled weight decay 0.2,
learning rate 5e-4 with 2,000 warmup iterations then cosine decay; batch
32,768 for 32 epochs; random square crops only as augmentation. Our
tokenizer is WordPiece trained on the captions (`train_caption_tokenizer`),
not CLIP's BPE; warmup is given in epochs.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def digits():
    """The CLI's default: `keras-ssl pretrain clip`."""
    from keras_ssl.image_text import ClipConfig

    return ClipConfig()


def paper():
    """CLIP ViT-B/32 (batch 32,768, 32 epochs)."""
    from keras_ssl.image_text import ClipConfig

    return ClipConfig(
        image_backbone="vit_base32",
        text_width=512,
        text_layers=12,
        text_heads=8,
        sequence_length=77,
        vocabulary_size=49152,
        projection_dim=512,
        epochs=32,
        batch_size=32768,
        learning_rate=5e-4,
        weight_decay=0.2,
        beta_2=0.98,
        warmup_epochs=1,
        templates=("a photo of a {}.",),
    )


RECIPES = {"digits": digits, "paper": paper}


def main(argv=None):
    parser = argparse.ArgumentParser(description="CLIP pretraining recipes")
    parser.add_argument("--recipe", default="digits", choices=sorted(RECIPES))
    parser.add_argument("--dataset", default="digits",
                        help="digits, tfds:NAME (with --data-dir) or a folder")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default="runs/clip-application")
    args = parser.parse_args(argv)

    import dataclasses

    from keras_ssl.data import load_image_text_data
    from keras_ssl.image_text import pretrain_clip

    config = RECIPES[args.recipe]()
    if args.epochs:
        config = dataclasses.replace(config, epochs=args.epochs)
    image_size = 224 if args.recipe == "paper" else None
    data = load_image_text_data(args.dataset, image_size=image_size,
                                data_dir=args.data_dir)
    result = pretrain_clip(data, config)
    os.makedirs(args.out, exist_ok=True)
    result.model.save(os.path.join(args.out, "model.keras"))
    result.model.image_encoder.save(os.path.join(args.out, "image_encoder.keras"))
    result.model.text_encoder.save_to_preset(
        os.path.join(args.out, "text_encoder_preset")
    )
    print("pretrained:", result.scores, "random init:", result.random_init_scores)
    return result


if __name__ == "__main__":
    main()

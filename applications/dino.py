"""DINO recipes: the paper's ImageNet ResNet-50 setup, and the small embedded-data one.

    python applications/dino.py                   # embedded digits, CPU, ~10 min
    python applications/dino.py --recipe imagenet --dataset tfds:imagenet2012 \
        --data-dir ~/tensorflow_datasets          # the paper's setup (needs GPUs)

The paper's recipe (Caron et al., 2021, section 4 and appendix): a DINO head
(3-layer MLP 2048 wide, 256-d bottleneck, weight-normalised last layer with
K = 65,536 outputs), student temperature 0.1, teacher temperature warmed up
0.04 → 0.07 over 30 epochs, center momentum 0.9, teacher momentum 0.996 → 1
on a cosine schedule, 2 global crops (scale 0.4–1) and local crops (scale
0.05–0.4); AdamW with learning rate 0.0005 × batch / 256, 10 warmup epochs,
weight decay 0.04, 100 epochs at batch 1024. (The ResNet-50 runs used LARS
and 0.3 × batch / 256; the ViT setup is the one given here.)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def digits():
    """The CLI's default: `keras-ssl pretrain dino`."""
    from keras_ssl.training import PretrainConfig

    return PretrainConfig(method="dino")


def imagenet():
    """The paper's recipe, on ResNet-50 (batch 1024, AdamW, 100 epochs)."""
    from keras_ssl.training import PretrainConfig

    batch_size = 1024
    epochs, steps_per_epoch = 100, 1_281_167 // batch_size
    return PretrainConfig(
        method="dino",
        backbone="resnet50",
        epochs=epochs,
        batch_size=batch_size,
        optimizer="adamw",
        learning_rate=0.0005 * batch_size / 256,
        weight_decay=0.04,
        warmup_epochs=10,
        knn_every=10,
        method_options=dict(
            output_dim=65536,
            hidden_dims=(2048, 2048),
            bottleneck_dim=256,
            teacher_momentum=0.996,
            warmup_teacher_temp_steps=30 * steps_per_epoch,
        ),
    )


RECIPES = {"digits": digits, "imagenet": imagenet}

if __name__ == "__main__":
    from run_recipe import main

    main(RECIPES, "dino")

"""Named configurations of every method, as data.

Every method has two presets:

- `embedded`: the small recipe for the embedded data on 2 CPU cores (the
  CLI's default), whose results are in docs/results/;
- `paper`: the paper's setup, every hyper-parameter stated, for a user with
  the paper's data and accelerators (`--dataset tfds:imagenet2012`, ...).

A preset is a dict of config field values (`keras_ssl.recipes.configs`);
for the vision methods `method_options` holds the method class's
constructor arguments. `tests/test_presets.py` holds every paper preset
against a table of the papers' values. This module imports no framework.

Example:

```python
from keras_ssl.recipes import presets
print(presets.names("dino"))                          # ('embedded', 'paper')
print(presets.get("dino", "paper").values["method_options"]["teacher_temp"])
```
"""

from __future__ import annotations

import copy
import dataclasses

from keras_ssl.recipes.methods import METHODS, get_method


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named configuration of one method.

    Attributes:
        name: `"embedded"`, `"paper"`, ...
        description: what it is, in a sentence.
        values: config field values (a field not named keeps the config
            class's default).
        reference: where the values come from (paper, section, table).
        notes: what of the paper the library does not do, if anything.
    """

    name: str
    description: str
    values: dict
    reference: str = ""
    notes: str = ""


IMAGENET_IMAGES = 1_281_167  # ImageNet-1k's training images

# --- vision: the small recipes for the embedded digits -----------------------
# Measured on the cluttered digits at 16×16 (docs/results/vision.md): crops of
# 20-100%, strong colour jitter and grayscale 0.5 (colour alone cannot solve
# the task), AdamW with warmup and cosine decay.
_DIGITS = dict(
    backbone="cifar_resnet_tiny", image_size=None, epochs=20, steps=None,
    batch_size=256, optimizer="adamw", learning_rate=2e-3, weight_decay=1e-4,
    beta_2=0.999, warmup_epochs=2, temperature=None, crop_scale=(0.2, 1.0),
    jitter_strength=1.0, grayscale_p=0.5, blur_p=0.0, num_local_crops=None,
    local_crop_size=None, local_crop_scale=None, knn_every=10,
    fine_tune_epochs=0,
)
# The ViTs of the masked image models: vit_tiny, AdamW with weight decay 0.05,
# 30 epochs of fine-tuning in the evaluation.
_DIGITS_VIT = dict(
    _DIGITS, backbone="vit_tiny", epochs=30, batch_size=128,
    learning_rate=1e-3, weight_decay=0.05, fine_tune_epochs=30,
)


def _digits(description, **values):
    return Preset("embedded", description, {**_DIGITS, **values},
                  reference="docs/results/vision.md")


def _digits_vit(description, **values):
    return Preset("embedded", description, {**_DIGITS_VIT, **values},
                  reference="docs/results/vision.md")


_VISION = {
    "simclr": {
        "embedded": _digits(
            "SimCLR on the embedded digits: 100 epochs of batch 128, tau 0.2, "
            "projection 256 -> 64.",
            epochs=100, batch_size=128, temperature=0.2,
            # Batch 128 (twice the optimizer steps of 256 in the same
            # minutes), tau 0.2 and a 64-d projection behind a 256-d hidden
            # layer, as MoCo's: k-NN 0.288 -> 0.627 (docs/results/vision.md).
            method_options=dict(projection_dim=64, projection_hidden_dims=(256,)),
        ),
        "paper": Preset(
            "paper",
            "SimCLR ResNet-50 on ImageNet: batch 4096, LARS 4.8, tau 0.1, 100 epochs.",
            dict(
                backbone="resnet50", image_size=224, epochs=100, steps=None,
                batch_size=4096, optimizer="lars", learning_rate=0.3 * 4096 / 256,
                weight_decay=1e-6, beta_2=0.999, warmup_epochs=10,
                temperature=0.1, crop_scale=(0.08, 1.0), jitter_strength=1.0,
                grayscale_p=0.2, blur_p=0.5, num_local_crops=None,
                local_crop_size=None, local_crop_scale=None, knn_every=10,
                fine_tune_epochs=0,
                method_options=dict(projection_dim=128,
                                    projection_hidden_dims=(2048,)),
            ),
            reference="Chen et al. 2020, A Simple Framework for Contrastive "
            "Learning of Visual Representations: sections 4, B.1, B.9.",
            notes="LARS here adapts every weight; the paper excludes biases "
            "and batch-norm parameters from LARS and weight decay.",
        ),
    },
    "moco": {
        "embedded": _digits(
            "MoCo v2 on the embedded digits: queue 4096, m 0.99, tau 0.2, "
            "batch 128, 100 epochs.",
            # Batch 128 (twice the steps of 256 per epoch) for 100 epochs:
            # k-NN 0.361 -> 0.537 (docs/results/vision.md).
            epochs=100, batch_size=128, temperature=0.2,
            # m 0.99: over a few thousand steps 0.999 would leave the key
            # encoder near its random init; 64-d projections for 64-d
            # features; a queue of 16 batches of the small unlabelled pool.
            method_options=dict(projection_dim=64, projection_hidden_dims=(256,),
                                queue_size=4096, momentum=0.99),
        ),
        "paper": Preset(
            "paper",
            "MoCo v2 ResNet-50 on ImageNet: queue 65,536, m 0.999, tau 0.2, "
            "SGD 0.03, 200 epochs.",
            dict(
                backbone="resnet50", image_size=224, epochs=200, steps=None,
                batch_size=256, optimizer="sgd", learning_rate=0.03,
                weight_decay=1e-4, beta_2=0.999, warmup_epochs=0,
                temperature=0.2, crop_scale=(0.2, 1.0),
                jitter_strength=0.5,  # brightness 0.4 = 0.8 s
                grayscale_p=0.2, blur_p=0.5, num_local_crops=None,
                local_crop_size=None, local_crop_scale=None, knn_every=10,
                fine_tune_epochs=0,
                method_options=dict(projection_dim=128,
                                    projection_hidden_dims=(2048,),
                                    queue_size=65536, momentum=0.999),
            ),
            reference="Chen et al. 2020, Improved Baselines with Momentum "
            "Contrastive Learning (MoCo v2); He et al. 2020 (MoCo), section 4.",
        ),
    },
    "byol": {
        "embedded": _digits(
            "BYOL on the embedded digits: tau_base 0.99, batch 64, 50 epochs.",
            epochs=50, batch_size=64,
            # Without negatives BYOL learns per step: batches of 64 give it 4x
            # the steps of 256 in the same minutes (docs/results/vision.md).
            method_options=dict(projection_dim=64, projection_hidden_dims=(256,),
                                prediction_hidden_dims=(256,), base_momentum=0.99),
        ),
        "paper": Preset(
            "paper",
            "BYOL ResNet-50 on ImageNet: batch 4096, LARS 3.2, tau_base 0.996, "
            "300 epochs.",
            dict(
                backbone="resnet50", image_size=224, epochs=300, steps=None,
                batch_size=4096, optimizer="lars", learning_rate=0.2 * 4096 / 256,
                weight_decay=1.5e-6, beta_2=0.999, warmup_epochs=10,
                temperature=None, crop_scale=(0.08, 1.0),
                jitter_strength=0.5,  # brightness 0.4, contrast 0.4, saturation 0.2
                grayscale_p=0.2,
                blur_p=1.0,  # > 0: the paper's asymmetric pair, 1.0 / 0.1
                num_local_crops=None, local_crop_size=None, local_crop_scale=None,
                knn_every=10, fine_tune_epochs=0,
                method_options=dict(projection_dim=256,
                                    projection_hidden_dims=(4096,),
                                    prediction_hidden_dims=(4096,),
                                    base_momentum=0.996),
            ),
            reference="Grill et al. 2020, Bootstrap Your Own Latent: "
            "section 3.2, appendix B (table 6), C.",
        ),
    },
    "dino": {
        "embedded": _digits(
            "DINO on the embedded digits: K 256, batch norm in the head, "
            "teacher 0.02, 4 local crops, batch 64, 80 epochs.",
            # 80 epochs (9.2 minutes): k-NN 0.297 after 50, 0.368 after 80
            # (docs/results/vision.md).
            epochs=80, batch_size=64, crop_scale=(0.4, 1.0),
            jitter_strength=2.0, num_local_crops=4, local_crop_size=None,
            local_crop_scale=(0.1, 0.4),
            # The tiny CNN's features start nearly equal for every image:
            # only a sharper teacher (0.02) and batch norm in the head keep
            # it from the uniform collapse (docs/results/vision.md).
            method_options=dict(
                output_dim=256, hidden_dims=(512, 512), bottleneck_dim=128,
                use_batch_norm_in_head=True, student_temp=0.1,
                teacher_temp=0.02, warmup_teacher_temp=0.02,
                warmup_teacher_temp_epochs=0, center_momentum=0.9,
                teacher_momentum=0.99, final_teacher_momentum=1.0,
            ),
        ),
        "paper": Preset(
            "paper",
            "DINO on ImageNet with the ViT-S/16 recipe on a ResNet-50: K 65,536, "
            "teacher 0.04 -> 0.07 over 30 epochs, 2 x 224 + 10 x 96 crops, "
            "AdamW, 100 epochs.",
            dict(
                backbone="resnet50", image_size=224, epochs=100, steps=None,
                batch_size=1024, optimizer="adamw",
                learning_rate=0.0005 * 1024 / 256, weight_decay=0.04,
                beta_2=0.999, warmup_epochs=10, temperature=None,
                crop_scale=(0.4, 1.0),
                jitter_strength=0.5,  # brightness 0.4, contrast 0.4, saturation 0.2
                grayscale_p=0.2, blur_p=1.0, num_local_crops=10,
                local_crop_size=96, local_crop_scale=(0.05, 0.4), knn_every=10,
                fine_tune_epochs=0,
                method_options=dict(
                    output_dim=65536, hidden_dims=(2048, 2048), bottleneck_dim=256,
                    use_batch_norm_in_head=False, student_temp=0.1,
                    teacher_temp=0.07, warmup_teacher_temp=0.04,
                    warmup_teacher_temp_epochs=30, center_momentum=0.9,
                    teacher_momentum=0.996, final_teacher_momentum=1.0,
                ),
            ),
            reference="Caron et al. 2021, Emerging Properties in Self-Supervised "
            "Vision Transformers: section 3, appendix (implementation details).",
            notes="The paper's encoder is ViT-S/16; keras-ssl's ViTBackbone has "
            "a fixed patch grid and cannot take 96-px local crops, so this "
            "preset trains a ResNet-50 (set backbone=vit_small16 with "
            "num_local_crops=0 for a ViT without local crops). "
            "The global crops blur with p 1.0 / 0.1 and solarize the "
            "second with p 0.2, the local crops blur with p 0.5 "
            "(MultiCropAugmentation). Not done here: the weight-decay cosine "
            "0.04 -> 0.4, freezing the last layer in the first epoch, "
            "gradient clipping at 3.0.",
        ),
    },
    "simsiam": {
        "embedded": _digits(
            "SimSiam on the embedded digits: projector 256 x 2 with batch "
            "norm, predictor bottleneck 64, weight decay 0.01, batch 256, 80 "
            "epochs.",
            epochs=80, weight_decay=1e-2,
            # AdamW's decoupled decay at 1e-4 is 50x weaker per step than the
            # paper's SGD decay, which SimSiam relies on: 0.237 with 1e-4,
            # 0.264 with 1e-2, 0.220 with 5e-2 (docs/results/vision.md).
            method_options=dict(projection_dim=256, projection_hidden_dims=(256,),
                                prediction_hidden_dims=(64,)),
        ),
        "paper": Preset(
            "paper",
            "SimSiam ResNet-50 on ImageNet: batch 512, SGD 0.1, 3-layer "
            "projector of 2048, predictor 512, 100 epochs.",
            dict(
                backbone="resnet50", image_size=224, epochs=100, steps=None,
                batch_size=512, optimizer="sgd", learning_rate=0.05 * 512 / 256,
                weight_decay=1e-4, beta_2=0.999, warmup_epochs=0,
                temperature=None, crop_scale=(0.2, 1.0),
                jitter_strength=0.5,  # MoCo v2's (0.4, 0.4, 0.4, 0.1)
                grayscale_p=0.2, blur_p=0.5, num_local_crops=None,
                local_crop_size=None, local_crop_scale=None, knn_every=10,
                fine_tune_epochs=0,
                method_options=dict(projection_dim=2048,
                                    projection_hidden_dims=(2048, 2048),
                                    prediction_hidden_dims=(512,)),
            ),
            reference="Chen & He 2021, Exploring Simple Siamese Representation "
            "Learning: section 3, appendix A (implementation details).",
            notes="The paper keeps the predictor's learning rate fixed (not "
            "decayed); here one cosine schedule moves every weight. Its "
            "projector's last batch norm has no learned offset; here it has.",
        ),
    },
    "barlow_twins": {
        "embedded": _digits(
            "Barlow Twins on the embedded digits: projector 512 x 3, lambda "
            "5e-3, BYOL's views, batch 128, 60 epochs.",
            epochs=60, batch_size=128,
            method_options=dict(projection_dim=512,
                                projection_hidden_dims=(512, 512),
                                lambda_offdiag=5e-3),
        ),
        "paper": Preset(
            "paper",
            "Barlow Twins ResNet-50 on ImageNet: projector 8192 x 3, lambda "
            "5e-3, batch 2048, LARS 1.6, 1000 epochs.",
            dict(
                backbone="resnet50", image_size=224, epochs=1000, steps=None,
                batch_size=2048, optimizer="lars",
                learning_rate=0.2 * 2048 / 256, weight_decay=1.5e-6,
                beta_2=0.999, warmup_epochs=10, temperature=None,
                crop_scale=(0.08, 1.0),
                jitter_strength=0.5,  # BYOL's (0.4, 0.4, 0.2, 0.1)
                grayscale_p=0.2,
                blur_p=1.0,  # > 0: BYOL's asymmetric pair, 1.0 / 0.1
                num_local_crops=None, local_crop_size=None,
                local_crop_scale=None, knn_every=10, fine_tune_epochs=0,
                method_options=dict(projection_dim=8192,
                                    projection_hidden_dims=(8192, 8192),
                                    lambda_offdiag=5e-3),
            ),
            reference="Zbontar et al. 2021, Barlow Twins: Self-Supervised "
            "Learning via Redundancy Reduction: sections 2, 3 "
            "(implementation details), appendix.",
            notes="The paper's LARS uses 0.0048 x batch/256 for biases and "
            "batch-norm parameters and leaves them out of weight decay; here "
            "LARS adapts every weight with one learning rate.",
        ),
    },
    "vicreg": {
        "embedded": _digits(
            "VICReg on the embedded digits: expander 512 x 3, weights "
            "25 / 25 / 1, BYOL's views, batch 128, 60 epochs.",
            epochs=60, batch_size=128,
            method_options=dict(projection_dim=512,
                                projection_hidden_dims=(512, 512),
                                invariance_weight=25.0, variance_weight=25.0,
                                covariance_weight=1.0),
        ),
        "paper": Preset(
            "paper",
            "VICReg ResNet-50 on ImageNet: expander 8192 x 3, weights "
            "25 / 25 / 1, batch 2048, LARS 1.6, 1000 epochs.",
            dict(
                backbone="resnet50", image_size=224, epochs=1000, steps=None,
                batch_size=2048, optimizer="lars",
                learning_rate=0.2 * 2048 / 256, weight_decay=1e-6,
                beta_2=0.999, warmup_epochs=10, temperature=None,
                crop_scale=(0.08, 1.0),
                jitter_strength=0.5,  # BYOL's (0.4, 0.4, 0.2, 0.1)
                grayscale_p=0.2,
                blur_p=1.0,  # > 0: BYOL's asymmetric pair, 1.0 / 0.1
                num_local_crops=None, local_crop_size=None,
                local_crop_scale=None, knn_every=10, fine_tune_epochs=0,
                method_options=dict(projection_dim=8192,
                                    projection_hidden_dims=(8192, 8192),
                                    invariance_weight=25.0, variance_weight=25.0,
                                    covariance_weight=1.0),
            ),
            reference="Bardes, Ponce & LeCun 2022, VICReg: "
            "Variance-Invariance-Covariance Regularization for "
            "Self-Supervised Learning: section 4.1, appendix C.1.",
            notes="The paper's LARS leaves biases and batch-norm parameters "
            "out of the adaptation and weight decay; here LARS adapts every "
            "weight.",
        ),
    },
    "swav": {
        "embedded": _digits(
            "SwAV on the embedded digits: 2 global + 4 local crops, 64 "
            "prototypes, epsilon 0.02, a queue of 1,024 from epoch 5, "
            "prototypes frozen for the first epoch, batch 64, 60 epochs.",
            epochs=60, batch_size=64, temperature=0.1, crop_scale=(0.4, 1.0),
            jitter_strength=2.0, num_local_crops=4, local_crop_size=None,
            local_crop_scale=(0.1, 0.4),
            # Like DINO's teacher (0.02): with the paper's epsilon of 0.05 the
            # codes stay near uniform and the k-NN at random init for 40
            # epochs; sharper codes and DINO's strong jitter make it learn
            # (docs/results/vision.md).
            method_options=dict(num_prototypes=64, projection_dim=64,
                                projection_hidden_dims=(256,),
                                sinkhorn_epsilon=0.02, sinkhorn_iterations=3,
                                queue_size=1024, queue_start_epochs=5,
                                freeze_prototypes_epochs=1),
        ),
        "paper": Preset(
            "paper",
            "SwAV ResNet-50 on ImageNet with small batches: 2 x 224 + 6 x 96 "
            "crops, 3,000 prototypes, a queue of 3,840 from epoch 15, batch "
            "256, LARS 0.6, 400 epochs.",
            dict(
                backbone="resnet50", image_size=224, epochs=400, steps=None,
                batch_size=256, optimizer="lars", learning_rate=0.6,
                weight_decay=1e-6, beta_2=0.999, warmup_epochs=0,
                temperature=0.1, crop_scale=(0.14, 1.0), jitter_strength=1.0,
                grayscale_p=0.2, blur_p=0.5, num_local_crops=6,
                local_crop_size=96, local_crop_scale=(0.05, 0.14), knn_every=10,
                fine_tune_epochs=0,
                method_options=dict(num_prototypes=3000, projection_dim=128,
                                    projection_hidden_dims=(2048,),
                                    sinkhorn_epsilon=0.05, sinkhorn_iterations=3,
                                    queue_size=3840, queue_start_epochs=15,
                                    freeze_prototypes_epochs=1),
            ),
            reference="Caron et al. 2020, Unsupervised Learning of Visual "
            "Features by Contrasting Cluster Assignments: sections 3, 4, "
            "appendix A; the 400-epoch batch-256 command of the official "
            "repository.",
            notes="The paper's cosine schedule ends at 0.0006, here at 0; its "
            "crops all blur with p 0.5 and none is solarized, while the "
            "multi-crop views here are DINO's (global blur 1.0 / 0.1 and "
            "solarization 0.2, local blur 0.5).",
        ),
    },
    "mae": {
        "embedded": _digits_vit(
            "MAE on the embedded digits: vit_tiny, 75% masking, a 4-block "
            "decoder of 64, plain pixel targets, 30 epochs.",
            beta_2=0.95,
            method_options=dict(mask_ratio=0.75, decoder_dim=64, decoder_depth=4,
                                decoder_num_heads=4, norm_pix_loss=False),
        ),
        "paper": Preset(
            "paper",
            "MAE ViT-B/16 on ImageNet: 75% masking, 8-block decoder of 512, "
            "normalised pixels, batch 4096, 800 epochs.",
            dict(
                backbone="vit_base16", image_size=224, epochs=800, steps=None,
                batch_size=4096, optimizer="adamw",
                learning_rate=1.5e-4 * 4096 / 256, weight_decay=0.05,
                beta_2=0.95, warmup_epochs=40, temperature=None,
                crop_scale=(0.2, 1.0), jitter_strength=1.0, grayscale_p=0.0,
                blur_p=0.0, num_local_crops=None, local_crop_size=None,
                local_crop_scale=None, knn_every=50, fine_tune_epochs=100,
                method_options=dict(mask_ratio=0.75, decoder_dim=512,
                                    decoder_depth=8, decoder_num_heads=16,
                                    norm_pix_loss=True),
            ),
            reference="He et al. 2022, Masked Autoencoders Are Scalable Vision "
            "Learners: section 4, appendix A.1 (table 8).",
            notes="MAE's views are crops and flips only; jitter and grayscale "
            "are not applied.",
        ),
    },
    "beit": {
        "embedded": _digits_vit(
            "BEiT on the embedded digits: a 512-code VQ tokenizer trained 6 "
            "epochs, then 40% blockwise masking, 30 epochs.",
            method_options=dict(mask_ratio=0.4, tokenizer_epochs=6,
                                tokenizer_options={}),
        ),
        "paper": Preset(
            "paper",
            "BEiT ViT-B/16 on ImageNet: 40% blockwise masking, 8,192 visual "
            "tokens, batch 2048, 800 epochs.",
            dict(
                backbone="vit_base16", image_size=224, epochs=800, steps=None,
                batch_size=2048, optimizer="adamw", learning_rate=1.5e-3,
                weight_decay=0.05, beta_2=0.999, warmup_epochs=10,
                temperature=None, crop_scale=(0.08, 1.0), jitter_strength=1.0,
                grayscale_p=0.0, blur_p=0.0, num_local_crops=None,
                local_crop_size=None, local_crop_scale=None, knn_every=50,
                fine_tune_epochs=100,
                method_options=dict(
                    mask_ratio=0.4, tokenizer_epochs=100,
                    tokenizer_options=dict(num_codes=8192, code_dim=32,
                                           hidden_dim=128),
                ),
            ),
            reference="Bao et al. 2022, BEiT: BERT Pre-Training of Image "
            "Transformers: section 2, appendix (pre-training hyper-parameters).",
            notes="The paper's tokenizer is DALL-E's dVAE; here a VQ tokenizer "
            "with 8,192 codes is trained on the same images first.",
        ),
    },
}

# --- image-text ----------------------------------------------------------------
_IMAGE_TEXT = {
    "clip": {
        "embedded": Preset(
            "embedded",
            "CLIP on the embedded captioned digits: cifar_resnet_tiny and a "
            "2-layer text Transformer of 64, 30 epochs.",
            {}, reference="docs/results/image_text.md",
        ),
        "paper": Preset(
            "paper",
            "CLIP ViT-B/32: a 12-layer text Transformer of 512, batch 32,768, "
            "32 epochs.",
            dict(
                image_backbone="vit_base32", image_size=224, text_width=512,
                text_layers=12, text_heads=8, sequence_length=77,
                vocabulary_size=49152, projection_dim=512, epochs=32, steps=None,
                batch_size=32768, learning_rate=5e-4, weight_decay=0.2,
                beta_2=0.98, warmup_epochs=1, templates=("a photo of a {}.",),
            ),
            reference="Radford et al. 2021, Learning Transferable Visual Models "
            "From Natural Language Supervision: section 2.5, appendix F "
            "(tables 19, 20).",
            notes="The paper warms up for 2,000 steps (about 1 epoch of its "
            "400 M pairs at batch 32,768 is 12,200 steps: here 1 epoch).",
        ),
    },
}

# --- language ----------------------------------------------------------------
# The embedded recipes of BERT and T5 train 7,500 steps, three times the
# 2,500 of the language benchmark: at 2,500 their probes do not yet beat
# random init, at 7,500 they do (docs/results/language.md).
LONG_EMBEDDED_STEPS = 7500
_BASE = dict(hidden_dim=768, num_layers=12, num_heads=12, intermediate_dim=3072,
             dropout=0.1)


def _language(method, description, **values):
    return Preset("embedded", description, {"method": method, **values},
                  reference="docs/results/language.md")


_LANGUAGE = {
    "bert": {
        "embedded": _language(
            "bert", "BERT on the embedded corpus: 2 layers of 64, WordPiece of "
            "2,000, 7,500 steps of 32 x 128 tokens.", steps=LONG_EMBEDDED_STEPS),
        "paper": Preset(
            "paper", "BERT-base: 12 x 768, 1 M steps of 256 x 512 tokens.",
            dict(method="bert", vocabulary_size=30522, sequence_length=512,
                 **_BASE, steps=1_000_000, steps_per_epoch=10_000,
                 batch_size=256, learning_rate=1e-4, weight_decay=0.01,
                 warmup_fraction=0.01, gradient_accumulation_steps=1,
                 mask_rate=0.15, dynamic_masking=False, optimizer="adamw"),
            reference="Devlin et al. 2019, BERT: section 3.1, appendix A.2.",
            notes="The paper trains 90% of the steps at 128 tokens, then 512.",
        ),
    },
    "roberta": {
        "embedded": _language(
            "roberta", "RoBERTa's recipe on the embedded corpus: 2 layers of "
            "64, byte-level BPE of 2,000, 2,500 steps."),
        "paper": Preset(
            "paper", "RoBERTa-base: 12 x 768, batch 8k (256 x 32 accumulated), "
            "500 k steps, lr 6e-4.",
            dict(method="roberta", vocabulary_size=50265, sequence_length=512,
                 **_BASE, steps=500_000, steps_per_epoch=10_000, batch_size=256,
                 gradient_accumulation_steps=32, learning_rate=6e-4,
                 weight_decay=0.01, warmup_fraction=24_000 / 500_000,
                 mask_rate=0.15, dynamic_masking=True, optimizer="adamw"),
            reference="Liu et al. 2019, RoBERTa: sections 4, 5, appendix "
            "(table 9).",
        ),
    },
    "gpt": {
        "embedded": _language(
            "gpt", "GPT on the embedded corpus: 2 layers of 64, byte-level BPE "
            "of 2,000, 2,500 steps."),
        "paper": Preset(
            "paper", "GPT-2 small: 12 x 768, 1,024 tokens, batch 512.",
            dict(method="gpt", vocabulary_size=50257, sequence_length=1024,
                 **_BASE, steps=300_000, steps_per_epoch=10_000, batch_size=512,
                 learning_rate=6e-4, weight_decay=0.1,
                 warmup_fraction=715 / 300_000, gradient_accumulation_steps=1,
                 optimizer="adamw"),
            reference="Radford et al. 2019, Language Models are Unsupervised "
            "Multitask Learners: section 2.3 (sizes); the schedule of GPT-3's "
            "small model (Brown et al. 2020, table 2.1).",
        ),
    },
    "t5": {
        "embedded": _language(
            "t5", "T5 on the embedded corpus: 2 layers of 64, SentencePiece of "
            "2,000, 7,500 steps of span corruption.", steps=LONG_EMBEDDED_STEPS),
        "paper": Preset(
            "paper", "T5-small (v1.0): 6 + 6 layers of 512, span corruption 15% "
            "with spans of 3, Adafactor 0.01, 524,288 steps.",
            dict(method="t5", vocabulary_size=32000, sequence_length=512,
                 hidden_dim=512, num_layers=6, num_heads=8, intermediate_dim=2048,
                 dropout=0.1, steps=524_288, steps_per_epoch=10_000,
                 batch_size=128, num_sentinels=100, noise_density=0.15,
                 mean_span_length=3.0, optimizer="adafactor",
                 learning_rate=0.01, warmup_fraction=10_000 / 524_288,
                 gradient_accumulation_steps=1,
                 backbone_options={"activation": "relu",
                                   "use_gated_activation": False,
                                   "key_value_dim": 64}),
            reference="Raffel et al. 2020, Exploring the Limits of Transfer "
            "Learning: sections 3.1.2, 3.3 (span corruption), 3.7.",
            notes="T5 decays 1/sqrt(step) after 10 k warmup steps; here cosine.",
        ),
    },
}

# --- speech ------------------------------------------------------------------
# The paper's pre-training objective: quantized targets, spans of M = 10
# frames started with p = 0.065.
PAPER_OBJECTIVE = dict(quantize_targets=True, mask_prob=0.065, mask_length=10)

_SPEECH = {
    "wav2vec2": {
        "embedded": Preset(
            "embedded",
            "wav2vec 2.0 on the embedded spoken corpus: 4 layers of 96, "
            "continuous targets, spans of 3, 3,000 steps; CTC 4,000 steps.",
            {}, reference="docs/results/speech.md",
        ),
        "paper": Preset(
            "paper",
            "wav2vec 2.0 BASE: quantized targets (G 2 x V 320), spans p 0.065 "
            "M 10, 100 distractors, 400 k steps; 10-minute CTC fine-tuning.",
            dict(
                **PAPER_OBJECTIVE,
                conv_channels=512, feature_norm="group", hidden_dim=768,
                num_layers=12, num_heads=12, intermediate_dim=3072,
                pos_conv_kernel=128, pos_conv_groups=16,
                pos_conv_weight_norm=True, dropout=0.1, layer_norm_first=False,
                curriculum_steps=0, steps=400_000, steps_per_epoch=1_000,
                batch_size=64, learning_rate=5e-4, weight_decay=0.01,
                warmup_fraction=0.08, num_codebooks=2, codebook_size=320,
                codevector_dim=256, final_dim=256, num_negatives=100,
                diversity_weight=0.1, feature_grad_mult=0.1,
                gumbel_anneal_fraction=0.7, finetune_steps=13_000,
                finetune_batch_size=64, finetune_learning_rate=5e-5,
                freeze_transformer_fraction=10 / 13,
                finetune_feature_encoder=False, finetune_mask_prob=0.075,
                finetune_channel_mask_prob=0.008,
                finetune_channel_mask_length=64,
            ),
            reference="Baevski et al. 2020, wav2vec 2.0: sections 3, 4.2-4.4, "
            "appendix B (tables 6, 7).",
            notes="The paper batches 1.4 M samples per GPU on 64 GPUs; here "
            "batches are counted in utterances.",
        ),
        "paper_objective": Preset(
            "paper_objective",
            "The embedded recipe with the paper's objective (quantized targets, "
            "spans of 10); from random init it stays at chance on the embedded "
            "corpus unless curriculum_steps (e.g. 1500) open the run.",
            dict(PAPER_OBJECTIVE), reference="docs/results/speech.md",
        ),
    },
}

PRESETS = {**_VISION, **_IMAGE_TEXT, **_LANGUAGE, **_SPEECH}
assert tuple(PRESETS) == tuple(METHODS) or set(PRESETS) == set(METHODS), (
    "every method in keras_ssl.recipes.METHODS needs its presets")


def names(method):
    """The preset names of `method`."""
    get_method(method)
    return tuple(PRESETS[method])


def option_values(method, key):
    """The value each preset of `method` gives its method option `key`
    (None where a preset leaves it out), in `names(method)` order."""
    return [get(method, name).values.get("method_options", {}).get(key)
            for name in names(method)]


def get(method, name="embedded"):
    """The `Preset` `name` of `method`; a `ValueError` naming the known ones."""
    get_method(method)
    if name not in PRESETS[method]:
        raise ValueError(
            f"{method} has no preset {name!r}: expected one of "
            f"{', '.join(PRESETS[method])}"
        )
    return PRESETS[method][name]


def preset_values(method, name="embedded"):
    """A deep copy of the values of a preset (safe to change)."""
    return copy.deepcopy(get(method, name).values)

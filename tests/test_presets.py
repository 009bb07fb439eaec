"""keras_ssl.recipes: the method list, the presets as data, and every paper
preset held against a table of the paper's values."""

import dataclasses
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from keras_ssl import recipes
from keras_ssl.recipes import presets

REPOSITORY = pathlib.Path(__file__).parents[1]

# The papers' values, written from the papers (sections and tables in each
# preset's `reference`), independently of keras_ssl/recipes/presets.py.
# Keys are config fields; "method_options.KEY" a constructor option.
PAPERS = {
    "simclr": {
        "backbone": "resnet50", "image_size": 224, "batch_size": 4096,
        "optimizer": "lars", "learning_rate": 4.8, "weight_decay": 1e-6,
        "warmup_epochs": 10, "epochs": 100, "temperature": 0.1,
        "crop_scale": (0.08, 1.0), "jitter_strength": 1.0, "grayscale_p": 0.2,
        "blur_p": 0.5, "method_options.projection_dim": 128,
        "method_options.projection_hidden_dims": (2048,),
    },
    "moco": {
        "backbone": "resnet50", "image_size": 224, "batch_size": 256,
        "optimizer": "sgd", "learning_rate": 0.03, "weight_decay": 1e-4,
        "epochs": 200, "temperature": 0.2, "crop_scale": (0.2, 1.0),
        "jitter_strength": 0.5, "grayscale_p": 0.2, "blur_p": 0.5,
        "method_options.queue_size": 65536, "method_options.momentum": 0.999,
        "method_options.projection_dim": 128,
        "method_options.projection_hidden_dims": (2048,),
    },
    "byol": {
        "backbone": "resnet50", "image_size": 224, "batch_size": 4096,
        "optimizer": "lars", "learning_rate": 3.2, "weight_decay": 1.5e-6,
        "warmup_epochs": 10, "epochs": 300, "crop_scale": (0.08, 1.0),
        "grayscale_p": 0.2, "blur_p": 1.0,
        "method_options.base_momentum": 0.996,
        "method_options.projection_dim": 256,
        "method_options.projection_hidden_dims": (4096,),
        "method_options.prediction_hidden_dims": (4096,),
    },
    "dino": {
        "backbone": "resnet50", "image_size": 224, "batch_size": 1024,
        "optimizer": "adamw", "learning_rate": 0.002, "weight_decay": 0.04,
        "warmup_epochs": 10, "epochs": 100, "crop_scale": (0.4, 1.0),
        "num_local_crops": 10, "local_crop_size": 96,
        "local_crop_scale": (0.05, 0.4),
        "method_options.output_dim": 65536,
        "method_options.hidden_dims": (2048, 2048),
        "method_options.bottleneck_dim": 256,
        "method_options.use_batch_norm_in_head": False,
        "method_options.student_temp": 0.1,
        "method_options.warmup_teacher_temp": 0.04,
        "method_options.teacher_temp": 0.07,
        "method_options.warmup_teacher_temp_epochs": 30,
        "method_options.center_momentum": 0.9,
        "method_options.teacher_momentum": 0.996,
        "method_options.final_teacher_momentum": 1.0,
    },
    "simsiam": {
        "backbone": "resnet50", "image_size": 224, "batch_size": 512,
        "optimizer": "sgd", "learning_rate": 0.1, "weight_decay": 1e-4,
        "epochs": 100, "crop_scale": (0.2, 1.0), "grayscale_p": 0.2,
        "blur_p": 0.5, "method_options.projection_dim": 2048,
        "method_options.projection_hidden_dims": (2048, 2048),
        "method_options.prediction_hidden_dims": (512,),
    },
    "barlow_twins": {
        "backbone": "resnet50", "image_size": 224, "batch_size": 2048,
        "optimizer": "lars", "learning_rate": 1.6, "weight_decay": 1.5e-6,
        "warmup_epochs": 10, "epochs": 1000, "crop_scale": (0.08, 1.0),
        "grayscale_p": 0.2, "blur_p": 1.0,
        "method_options.projection_dim": 8192,
        "method_options.projection_hidden_dims": (8192, 8192),
        "method_options.lambda_offdiag": 5e-3,
    },
    "vicreg": {
        "backbone": "resnet50", "image_size": 224, "batch_size": 2048,
        "optimizer": "lars", "learning_rate": 1.6, "weight_decay": 1e-6,
        "warmup_epochs": 10, "epochs": 1000, "crop_scale": (0.08, 1.0),
        "grayscale_p": 0.2, "blur_p": 1.0,
        "method_options.projection_dim": 8192,
        "method_options.projection_hidden_dims": (8192, 8192),
        "method_options.invariance_weight": 25.0,
        "method_options.variance_weight": 25.0,
        "method_options.covariance_weight": 1.0,
    },
    "swav": {
        "backbone": "resnet50", "image_size": 224, "batch_size": 256,
        "optimizer": "lars", "learning_rate": 0.6, "weight_decay": 1e-6,
        "epochs": 400, "temperature": 0.1, "crop_scale": (0.14, 1.0),
        "num_local_crops": 6, "local_crop_size": 96,
        "local_crop_scale": (0.05, 0.14),
        "method_options.num_prototypes": 3000,
        "method_options.projection_dim": 128,
        "method_options.projection_hidden_dims": (2048,),
        "method_options.sinkhorn_epsilon": 0.05,
        "method_options.sinkhorn_iterations": 3,
        "method_options.queue_size": 3840,
        "method_options.queue_start_epochs": 15,
        "method_options.freeze_prototypes_epochs": 1,
    },
    "mae": {
        "backbone": "vit_base16", "image_size": 224, "batch_size": 4096,
        "optimizer": "adamw", "learning_rate": 2.4e-3, "weight_decay": 0.05,
        "beta_2": 0.95, "warmup_epochs": 40, "epochs": 800,
        "crop_scale": (0.2, 1.0), "method_options.mask_ratio": 0.75,
        "method_options.decoder_dim": 512, "method_options.decoder_depth": 8,
        "method_options.decoder_num_heads": 16,
        "method_options.norm_pix_loss": True,
    },
    "beit": {
        "backbone": "vit_base16", "image_size": 224, "batch_size": 2048,
        "optimizer": "adamw", "learning_rate": 1.5e-3, "weight_decay": 0.05,
        "beta_2": 0.999, "warmup_epochs": 10, "epochs": 800,
        "method_options.mask_ratio": 0.4,
    },
    "clip": {
        "image_backbone": "vit_base32", "image_size": 224, "batch_size": 32768,
        "epochs": 32, "learning_rate": 5e-4, "weight_decay": 0.2, "beta_2": 0.98,
        "text_width": 512, "text_layers": 12, "text_heads": 8,
        "sequence_length": 77, "vocabulary_size": 49152, "projection_dim": 512,
    },
    "bert": {
        "hidden_dim": 768, "num_layers": 12, "num_heads": 12,
        "intermediate_dim": 3072, "vocabulary_size": 30522, "sequence_length": 512,
        "batch_size": 256, "steps": 1_000_000, "learning_rate": 1e-4,
        "weight_decay": 0.01, "warmup_fraction": 0.01, "dropout": 0.1,
        "mask_rate": 0.15,
    },
    "roberta": {
        "hidden_dim": 768, "num_layers": 12, "num_heads": 12,
        "intermediate_dim": 3072, "vocabulary_size": 50265, "sequence_length": 512,
        "steps": 500_000, "learning_rate": 6e-4, "weight_decay": 0.01,
        "mask_rate": 0.15, "dynamic_masking": True,
    },
    "gpt": {
        "hidden_dim": 768, "num_layers": 12, "num_heads": 12,
        "intermediate_dim": 3072, "vocabulary_size": 50257,
        "sequence_length": 1024, "batch_size": 512, "learning_rate": 6e-4,
    },
    "t5": {
        "hidden_dim": 512, "num_layers": 6, "num_heads": 8,
        "intermediate_dim": 2048, "vocabulary_size": 32000, "sequence_length": 512,
        "batch_size": 128, "steps": 524_288, "noise_density": 0.15,
        "mean_span_length": 3.0, "optimizer": "adafactor", "learning_rate": 0.01,
        "num_sentinels": 100,
    },
    "wav2vec2": {
        "conv_channels": 512, "hidden_dim": 768, "num_layers": 12,
        "num_heads": 12, "intermediate_dim": 3072, "pos_conv_kernel": 128,
        "pos_conv_groups": 16, "steps": 400_000, "learning_rate": 5e-4,
        "warmup_fraction": 0.08, "num_codebooks": 2, "codebook_size": 320,
        "codevector_dim": 256, "final_dim": 256, "quantize_targets": True,
        "mask_prob": 0.065, "mask_length": 10, "num_negatives": 100,
        "diversity_weight": 0.1, "feature_grad_mult": 0.1,
        "finetune_learning_rate": 5e-5, "finetune_steps": 13_000,
        "finetune_feature_encoder": False,
    },
}


def test_one_method_list_and_two_presets_each():
    assert tuple(PAPERS) == tuple(recipes.METHODS) == tuple(presets.PRESETS)
    for method in recipes.METHODS:
        assert {"embedded", "paper"} <= set(presets.names(method))
        paper = presets.get(method, "paper")
        assert paper.reference and paper.description
    from keras_ssl import cli

    assert cli.choose_backend("mae") == "torch"
    assert cli.choose_backend("simclr", environ={"KERAS_BACKEND": "jax"}) == "jax"


@pytest.mark.parametrize("method", list(PAPERS))
def test_paper_preset_holds_the_papers_values(method):
    config = recipes.make_config(method, "paper")
    options = getattr(config, "method_options", {})
    for key, expected in PAPERS[method].items():
        if key.startswith("method_options."):
            actual = options[key.split(".", 1)[1]]
        else:
            actual = getattr(config, key)
        if isinstance(expected, float):
            assert actual == pytest.approx(expected), key
        else:
            assert actual == expected, key


@pytest.mark.parametrize("method", list(recipes.methods_of("vision")))
def test_paper_options_name_every_embedded_option(method):
    # A config's method_options are the embedded preset's, updated: a paper
    # preset that left one out would inherit the small recipe's value.
    embedded = presets.preset_values(method, "embedded")["method_options"]
    paper = presets.preset_values(method, "paper")["method_options"]
    assert set(embedded) <= set(paper)


def test_embedded_preset_is_the_config_default():
    from keras_ssl.recipes.configs import (
        ClipConfig,
        LanguageConfig,
        PretrainConfig,
        SpeechConfig,
    )

    for method in recipes.methods_of("vision"):
        assert recipes.make_config(method) == PretrainConfig(method=method)
    assert recipes.make_config("clip") == ClipConfig()
    assert recipes.make_config("wav2vec2") == SpeechConfig()
    assert recipes.make_config("roberta") == LanguageConfig(method="roberta")
    # BERT and T5 win against random init at 7,500 steps, not 2,500.
    assert recipes.make_config("bert").steps == presets.LONG_EMBEDDED_STEPS
    assert recipes.make_config("t5").steps == presets.LONG_EMBEDDED_STEPS


def test_overrides_and_their_errors():
    config = recipes.make_config("moco", overrides={"queue_size": 512,
                                                    "epochs": 3})
    assert config.method_options["queue_size"] == 512 and config.epochs == 3
    assert config.method_options["momentum"] == 0.99  # the preset's
    config = recipes.make_config("dino", "paper",
                                 {"method_options.teacher_temp": 0.05})
    assert config.method_options["teacher_temp"] == 0.05
    with pytest.raises(ValueError, match="queue_size"):  # lists what it takes
        recipes.make_config("moco", overrides={"queue": 1})
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        recipes.make_config("simclr", overrides={"epochs": 0})
    with pytest.raises(ValueError, match="no preset 'imagenet'"):
        recipes.make_config("simclr", "imagenet")
    with pytest.raises(ValueError, match="unknown method"):
        recipes.make_config("simclrv2")
    with pytest.raises(ValueError, match="temperature applies"):
        recipes.make_config("byol", overrides={"temperature": 0.1})


def test_config_modules_import_no_framework():
    code = ("import sys; sys.argv[0] = 'keras-ssl'\n"  # the console script
            "import sys, keras_ssl.cli, keras_ssl.recipes as r\n"
            "[r.make_config(m, p) for m in r.METHODS for p in r.presets.names(m)]\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("method", list(recipes.methods_of("vision")))
def test_vision_paper_preset_builds_its_method(method):
    from keras_ssl.backbones import CIFARResNetBackbone, ViTBackbone
    from keras_ssl.training import make_method

    paper = recipes.make_config(method, "paper")
    images = None
    if method in ("mae", "beit"):
        # A small ViT with the paper's 16-px patches (a 4×4 grid).
        encoder = ViTBackbone(image_shape=(64, 64, 3), patch_size=16,
                              hidden_dim=16, num_layers=1, num_heads=2)
        images = np.random.default_rng(0).random((8, 64, 64, 3)).astype("float32")
        if "tokenizer_epochs" in paper.method_options:
            paper = dataclasses.replace(
                paper, method_options=dict(paper.method_options, tokenizer_epochs=1))
    else:
        encoder = CIFARResNetBackbone((8,), (1,), image_shape=(None, None, 3))
    # The paper's method options are valid constructor arguments.
    model = make_method(paper, encoder, steps_per_epoch=10, images=images)
    assert type(model).__name__ == recipes.METHODS[method].model
    if method == "dino":  # 30 warmup epochs of 10 steps
        assert model.warmup_teacher_temp_steps == 300
        assert model.num_local_crops == 10
    if method == "swav":  # epochs of 10 steps: queue from 15, freeze 1
        assert (model.queue_start_step, model.freeze_prototypes_steps) == (150, 10)
        assert model.num_local_crops == 6


def test_wav2vec2_base_preset_builds_at_a_narrow_width():
    from keras_ssl import speech

    base = recipes.make_config("wav2vec2", "paper")
    assert base.pos_conv_weight_norm and not base.layer_norm_first
    assert base.curriculum_steps == 0  # the paper has no curriculum stage
    np.testing.assert_allclose(2.0 * base.gumbel_decay ** (0.7 * base.steps), 0.5)
    # The BASE objective on a narrow backbone (BASE itself has 95 M parameters).
    small = dataclasses.replace(base, conv_channels=16, hidden_dim=32, num_layers=1,
                                num_heads=2, intermediate_dim=64, pos_conv_kernel=8,
                                pos_conv_groups=2)
    model = speech.build_wav2vec2(small)
    assert model.quantizer.num_codes == 640 and model.final_dim == 256
    assert model.encoder.pos_conv.weight_norm
    assert speech.paper_objective(recipes.make_config("wav2vec2")) == (
        recipes.make_config("wav2vec2", "paper_objective"))


def test_every_method_has_an_application_script_that_calls_the_cli():
    scripts = REPOSITORY / "applications"
    assert sorted(p.stem for p in scripts.glob("*.py")) == sorted(recipes.METHODS)
    for method in recipes.METHODS:
        text = (scripts / f"{method}.py").read_text()
        # The command in its own process, so it picks the backend first.
        assert f'"keras_ssl.cli", "pretrain", "{method}"' in text
        assert "sys.path" not in text
    done = subprocess.run(
        [sys.executable, str(scripts / "dino.py"), "--preset", "paper", "--help"],
        capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "--num-local-crops" in done.stdout and "paper: 10" in done.stdout

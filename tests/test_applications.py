"""applications/: every recipe is a valid config whose method builds."""

import dataclasses
import importlib.util
import pathlib

import numpy as np
import pytest

from keras_ssl.backbones import CIFARResNetBackbone, ViTBackbone
from keras_ssl.training import RECIPES, PretrainConfig, make_method

MASKED_IMAGE_MODELS = ("mae", "beit")

APPLICATIONS = pathlib.Path(__file__).parents[1] / "applications"


def _load(method):
    spec = importlib.util.spec_from_file_location(
        f"application_{method}", APPLICATIONS / f"{method}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("method", list(RECIPES))
def test_every_method_has_a_digits_and_a_paper_recipe(method):
    recipes = _load(method).RECIPES
    assert set(recipes) == {"digits", "imagenet"}
    digits = recipes["digits"]()
    assert digits == PretrainConfig(method=method)
    paper = recipes["imagenet"]()
    assert paper.method == method
    images = None
    if method in MASKED_IMAGE_MODELS:
        assert paper.backbone == "vit_base16"
        # A small ViT with ViT-B's 16-px patches (a 4×4 grid).
        encoder = ViTBackbone(image_shape=(64, 64, 3), patch_size=16,
                              hidden_dim=16, num_layers=1, num_heads=2)
        images = np.random.default_rng(0).random((8, 64, 64, 3)).astype("float32")
        if "tokenizer_epochs" in paper.method_options:
            options = dict(paper.method_options, tokenizer_epochs=1)
            paper = dataclasses.replace(paper, method_options=options)
    else:
        assert paper.backbone == "resnet50"
        encoder = CIFARResNetBackbone((8,), (1,), image_shape=(None, None, 3))
    # The paper's method options are valid constructor arguments.
    model = make_method(paper, encoder, steps_per_epoch=10, images=images)
    assert type(model).__name__.lower().startswith(method)


def test_wav2vec2_has_an_embedded_and_the_base_recipe():
    from keras_ssl import speech

    recipes = _load("wav2vec2").RECIPES
    assert set(recipes) == {"embedded", "paper"}
    assert recipes["embedded"]() == speech.SpeechConfig()
    base = recipes["paper"]()
    assert (base.conv_channels, base.feature_norm, base.hidden_dim, base.num_layers,
            base.intermediate_dim, base.pos_conv_kernel) == (512, "group", 768, 12, 3072, 128)
    assert base.pos_conv_weight_norm and not base.layer_norm_first
    assert base.curriculum_steps == 0  # the paper has no curriculum stage
    # The paper's objective and fine-tuning, not the small recipe's.
    assert base.quantize_targets and not base.finetune_feature_encoder
    assert (base.codebook_size, base.mask_prob, base.mask_length, base.num_negatives,
            base.steps) == (320, 0.065, 10, 100, 400_000)
    np.testing.assert_allclose(2.0 * base.gumbel_decay ** (0.7 * base.steps), 0.5)
    # The BASE objective on a narrow backbone (BASE itself has 95 M parameters).
    small = dataclasses.replace(base, conv_channels=16, hidden_dim=32, num_layers=1,
                                num_heads=2, intermediate_dim=64, pos_conv_kernel=8,
                                pos_conv_groups=2)
    model = speech.build_wav2vec2(small)
    assert model.quantizer.num_codes == 640 and model.final_dim == 256
    assert model.encoder.pos_conv.weight_norm

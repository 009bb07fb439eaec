"""The small speech recipe: its default objective against the paper's, the
curriculum's config, pre-training that continues from a given backbone, and
which CTC fine-tuning freezes the feature encoder."""

import dataclasses

import keras
import numpy as np
import pytest

from keras_ssl import speech

# The speech recipe runs on torch by default; the models' own tests cover the
# jit backends.
torch_only = pytest.mark.skipif(keras.backend.backend() != "torch",
                                reason="the speech recipe's runs: torch only")


def test_the_default_objective_and_the_papers():
    # The small recipe: continuous targets, spans of 3, no curriculum, and
    # the feature encoder trained in CTC (docs/results/speech.md).
    default = speech.SpeechConfig()
    assert (default.quantize_targets, default.mask_length, default.mask_prob,
            default.curriculum_steps, default.finetune_feature_encoder) == (
                False, 3, 0.15, 0, True)
    paper = speech.paper_objective(default)
    assert (paper.quantize_targets, paper.mask_length, paper.mask_prob) == (True, 10, 0.065)
    changed = {f.name for f in dataclasses.fields(default)
               if getattr(default, f.name) != getattr(paper, f.name)}
    assert changed == {"quantize_targets", "mask_length", "mask_prob"}


def test_the_curriculum_stage_has_continuous_targets_and_short_spans():
    config = speech.SpeechConfig(curriculum_steps=7, steps=11)
    first = speech.curriculum_config(config)
    assert (first.steps, first.curriculum_steps, first.quantize_targets) == (7, 0, False)
    assert (first.mask_length, first.mask_prob) == (3, 0.15)
    # Everything else, the backbone included, is the main stage's.
    same = {f.name for f in dataclasses.fields(config)} - {
        "steps", "curriculum_steps", "quantize_targets", "mask_length", "mask_prob"}
    assert all(getattr(first, n) == getattr(config, n) for n in same)
    assert config.feature_norm == "group"
    with pytest.raises(ValueError, match="curriculum_steps"):
        speech.SpeechConfig(curriculum_steps=-1)


@torch_only
def test_pretraining_continues_from_the_given_backbone(tiny_spoken_corpus):
    config = speech.SpeechConfig(
        conv_channels=16, hidden_dim=32, num_layers=1, num_heads=2,
        intermediate_dim=64, pos_conv_kernel=8, pos_conv_groups=2,
        codebook_size=8, codevector_dim=16, final_dim=16, num_negatives=5,
        curriculum_steps=2, steps=2)
    config = speech.paper_objective(config)
    encoder = speech.build_backbone(config)
    before = [np.array(w) for w in encoder.get_weights()]
    result = speech.pretrain_wav2vec2(tiny_spoken_corpus, config, verbose=0,
                                      encoder=encoder)
    assert result.model.encoder is encoder
    assert result.model.quantize_targets  # the main stage: the paper's objective
    moved = [not np.allclose(a, b) for a, b in zip(before, encoder.get_weights())]
    assert any(moved)
    assert {"curriculum_contrastive_loss", "contrastive_loss",
            "diversity_loss"} <= set(result.history)
    assert "curriculum_diversity_loss" not in result.history
    assert np.isfinite(float(result.scores["contrastive_loss"]))


@pytest.mark.parametrize("option,from_scratch,frozen", [
    (False, False, True),   # the paper: a pre-trained CNN stays fixed
    (True, False, False),   # finetune_feature_encoder=True trains it too
    (False, True, False),   # random init always trains everything
])
def test_ctc_freezes_the_feature_encoder_only_where_asked(option, from_scratch,
                                                          frozen):
    from keras_ssl.data import CharacterVocabulary

    config = speech.SpeechConfig(
        conv_channels=8, hidden_dim=16, num_layers=1, num_heads=2,
        intermediate_dim=32, pos_conv_kernel=4, pos_conv_groups=2,
        finetune_feature_encoder=option)
    model = speech.build_ctc(speech.build_backbone(config), config,
                             CharacterVocabulary(), from_scratch=from_scratch)
    assert model.freeze_feature_encoder is frozen
    assert model.encoder.feature_encoder.trainable is not frozen


@torch_only
def test_one_arm_of_the_comparison_is_the_same_run_as_in_both(tiny_spoken_corpus):
    # benchmarks/speech_quality.py --arms pretrained reuses an earlier run's
    # random-init figure: that arm must not depend on the other one.
    config = speech.SpeechConfig(
        conv_channels=8, hidden_dim=16, num_layers=1, num_heads=2,
        intermediate_dim=32, pos_conv_kernel=4, pos_conv_groups=2,
        finetune_steps=2, steps_per_epoch=2)
    encoder = speech.build_backbone(config)
    both = speech.compare_with_random_init(tiny_spoken_corpus, encoder, config,
                                           verbose=0)
    alone = speech.compare_with_random_init(tiny_spoken_corpus, encoder, config,
                                            verbose=0, arms=("random_init",))
    assert set(both) == {"pretrained", "random_init"}
    assert set(alone) == {"random_init"}
    np.testing.assert_allclose(alone["random_init"].history["loss"],
                               both["random_init"].history["loss"], rtol=1e-6)
    assert alone["random_init"].scores["cer"] == both["random_init"].scores["cer"]
    with pytest.raises(ValueError, match="arms"):
        speech.compare_with_random_init(tiny_spoken_corpus, encoder, config,
                                        arms=("random",))

"""GPT-2 recipes: GPT-2 small as in the paper, and the small embedded one.

    python applications/gpt2.py                     # embedded corpus, CPU
    python applications/gpt2.py --recipe paper --text WEBTEXT/  # accelerators

The paper's recipe (Radford et al., 2019, section 2.3): GPT-2 small has 12
layers, hidden 768, 12 heads (117 M parameters, pre-norm), a 1,024-token
context and a 50,257-entry byte-level BPE, batch 512 sequences. The paper
gives no learning rate for it: we take GPT-3 small's (Brown et al., 2020,
table 2.1: 6e-4, cosine decay to 10%, 375 M warmup tokens ≈ 715 steps of
512 × 1,024), Adam β = (0.9, 0.95), weight decay 0.1. The step count
(300 k) is ours; our cosine decays to 0.
"""

from run_language_recipe import main


def embedded():
    """The CLI's default: `keras-ssl pretrain gpt`."""
    from keras_ssl.language import LanguageConfig

    return LanguageConfig(method="gpt")


def paper():
    """GPT-2 small."""
    from keras_ssl.language import LanguageConfig

    return LanguageConfig(
        method="gpt", vocabulary_size=50257, sequence_length=1024,
        hidden_dim=768, num_layers=12, num_heads=12, intermediate_dim=3072,
        dropout=0.1, steps=300_000, steps_per_epoch=10_000, batch_size=512,
        learning_rate=6e-4, weight_decay=0.1, warmup_fraction=715 / 300_000,
    )


RECIPES = {"embedded": embedded, "paper": paper}

if __name__ == "__main__":
    main(RECIPES, "gpt2")

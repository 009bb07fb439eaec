"""RoBERTa recipes: RoBERTa-base as in the paper, and the small embedded one.

    python applications/roberta.py                  # embedded corpus, CPU
    python applications/roberta.py --recipe paper --text CORPUS/  # accelerators

The paper's recipe (Liu et al., 2019, sections 4 and appendix table 9):
BERT-base's architecture (12 layers, 768, 12 heads, 3,072) over a
50,265-entry byte-level BPE; masked LM only (no NSP) with dynamic masking;
FULL-SENTENCES inputs of up to 512 tokens that cross document boundaries;
batch 8,000 sequences, 500 k steps; Adam lr 6e-4, β = (0.9, 0.98),
ε = 1e-6, weight decay 0.01, 24,000 warmup steps, dropout 0.1. The
8k-sequence batch is reached on fewer devices with
`gradient_accumulation_steps` (here 32 × 256). Our decay is cosine, the
paper's linear.
"""

from run_language_recipe import main


def embedded():
    """The CLI's default: `keras-ssl pretrain roberta`."""
    from keras_ssl.language import LanguageConfig

    return LanguageConfig(method="roberta")


def paper():
    """RoBERTa-base."""
    from keras_ssl.language import LanguageConfig

    return LanguageConfig(
        method="roberta", vocabulary_size=50265, sequence_length=512,
        hidden_dim=768, num_layers=12, num_heads=12, intermediate_dim=3072,
        dropout=0.1, steps=500_000, steps_per_epoch=10_000, batch_size=256,
        gradient_accumulation_steps=32, learning_rate=6e-4, weight_decay=0.01,
        warmup_fraction=24_000 / 500_000,
    )


RECIPES = {"embedded": embedded, "paper": paper}

if __name__ == "__main__":
    main(RECIPES, "roberta")

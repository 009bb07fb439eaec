"""The embedded text corpus and the text loaders (local files, mock TFDS)."""

import numpy as np
import pytest

from keras_ssl.datasets.text_corpus import (
    corpus_from_documents,
    load_python_docs,
    load_text_files,
    load_tfds_text,
    split_paragraphs,
    split_sentences,
)


def test_python_docs_is_real_prose_with_a_held_out_split(python_docs):
    corpus = python_docs
    assert len(corpus.names) >= 60
    assert 25_000 < corpus.num_words < 80_000
    words = " ".join(corpus.documents).split()
    # English prose: the commonest words are function words.
    common = {w for w, _ in __import__("collections").Counter(words).most_common(8)}
    assert {"the", "of", "is"} <= common
    # No code or grammar rules, no heading underlines survive.
    assert "::=" not in " ".join(corpus.documents)
    assert "*****" not in " ".join(corpus.documents)
    train = {p for doc in corpus.train_paragraphs for p in doc}
    test = [p for doc in corpus.test_paragraphs for p in doc]
    assert 0.05 < len(test) / (len(train) + len(test)) < 0.2
    assert not train & set(test)
    # The same corpus every time (seeded).
    again = load_python_docs()
    assert again.test_paragraphs == corpus.test_paragraphs


def test_labelled_paragraphs_are_a_real_classification_task(python_docs):
    texts, labels = python_docs.labelled_paragraphs("train", num_classes=8)
    test_texts, test_labels = python_docs.labelled_paragraphs("test", num_classes=8)
    assert len(texts) == len(labels) > 300 and len(test_texts) == len(test_labels) > 30
    assert set(labels.tolist()) == set(test_labels.tolist()) == set(range(8))
    assert all(len(t.split()) >= 8 for t in texts + test_texts)
    # label 0 is the document with the most paragraphs
    assert np.bincount(labels)[0] == np.bincount(labels).max()
    with pytest.raises(ValueError, match="num_classes"):
        python_docs.labelled_paragraphs("train", num_classes=1)
    with pytest.raises(ValueError, match="split"):
        python_docs.labelled_paragraphs("validation")


def test_paragraph_and_sentence_splitting():
    text = (
        "The title\n*********\n\nFirst line of a\nwrapped paragraph. Second "
        "sentence, e.g. this one!\n\n   code = 1\n   more = 2\n\nLast (one)."
    )
    assert split_paragraphs(text) == [
        "First line of a wrapped paragraph. Second sentence, e.g. this one!",
        "Last (one).",
    ]
    assert split_sentences(text)[1:4] == [
        "First line of a wrapped paragraph.",
        "Second sentence, e.g. this one!",
        "code = 1 more = 2",
    ]
    sentences = split_sentences("One. Two is here? Three, i.e. the end.")
    assert sentences == ["One.", "Two is here?", "Three, i.e. the end."]


def test_text_files_and_folders(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.txt").write_text(
        "\n\n".join(f"Paragraph {i} of one, with words." for i in range(10))
    )
    (tmp_path / "two.txt").write_text("A single paragraph of the second file.")
    corpus = load_text_files(tmp_path)
    assert corpus.names == ["a/one.txt", "two.txt"]
    assert len(corpus.train_paragraphs[0]) == 9 and len(corpus.test_paragraphs[0]) == 1
    single = load_text_files(tmp_path / "two.txt", test_fraction=0.0)
    assert single.documents == ["A single paragraph of the second file."]

    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="empty.txt is empty"):
        load_text_files(tmp_path)
    (tmp_path / "empty.txt").write_bytes(b"\xff\xfe bad")
    with pytest.raises(ValueError, match="not valid utf-8"):
        load_text_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such"):
        load_text_files(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no \\*.md files"):
        load_text_files(tmp_path, pattern="*.md")
    with pytest.raises(ValueError, match="no text"):
        corpus_from_documents(["x"], ["   code only\n   more"])


def test_tfds_text_from_a_local_data_dir():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        corpus = load_tfds_text("imdb_reviews", split="train", max_examples=4)
    assert len(corpus.names) == 4 and corpus.names[0] == "imdb_reviews:train:0"
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(ValueError, match="no feature 'body'"):
            load_tfds_text("imdb_reviews", text_key="body")
    with pytest.raises(ValueError, match="neither registered nor prepared"):
        load_tfds_text("no_such_dataset_xyz")

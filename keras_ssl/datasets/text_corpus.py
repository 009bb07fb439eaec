"""Text corpora: the embedded English prose, and loaders for the user's text.

The embedded corpus is the text of the Python language reference that every
CPython installation carries in `pydoc_data.topics` (~465 KB, ~65 k words,
79 documents such as "The if statement" or "Special method names"). It is
real English prose, edited and consistent, and needs no download.

Each document is split into paragraphs (blank-line separated, wrapped lines
joined); grammar rules and code examples (indented blocks) and heading
underlines are dropped, so what remains is prose. A fixed, seeded tenth of
each document's paragraphs is held out: the test split of perplexity and of
the downstream "which document is this paragraph from" task
(`TextCorpus.labelled_paragraphs`).

Example:

>>> corpus = load_python_docs()
>>> len(corpus.names), corpus.names[0]
(67, 'assert')
>>> corpus.documents[0][:38]
'Assert statements are a convenient way'
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import numpy as np

_UNDERLINE = re.compile(r"^\s*([*=\-~^\"'#+])\1{2,}\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z\"'(\[])")
# Abbreviations that end with a period but not a sentence.
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "cf.", "vs.", "Mr.", "Dr.", "No.")


@dataclasses.dataclass
class TextCorpus:
    """Documents as paragraphs, split into a training and a held-out part.

    Attributes:
        names: one name per document.
        train_paragraphs: per document, its training paragraphs.
        test_paragraphs: per document, its held-out paragraphs.
    """

    names: list
    train_paragraphs: list
    test_paragraphs: list

    @property
    def documents(self):
        """The training documents (paragraphs joined by blank lines), one
        string per document that has training paragraphs."""
        return ["\n\n".join(p) for p in self.train_paragraphs if p]

    @property
    def test_documents(self):
        """The held-out paragraphs of each document, joined likewise."""
        return ["\n\n".join(p) for p in self.test_paragraphs if p]

    @property
    def num_words(self):
        return sum(
            len(p.split())
            for part in (self.train_paragraphs, self.test_paragraphs)
            for doc in part
            for p in doc
        )

    def labelled_paragraphs(self, split="train", num_classes=None, min_words=8,
                            unit="paragraph"):
        """`(texts, labels)`: a real classification task, the document each
        paragraph (or sentence) comes from.

        Args:
            split: "train" or "test".
            num_classes: keep the documents with the most training
                paragraphs (label = rank among them); None keeps all.
            min_words: drop shorter texts (headings, one-liners).
            unit: "paragraph", or "sentence" (the sentences of the same
                paragraphs: a harder task with four times more examples).
        """
        if unit not in ("paragraph", "sentence"):
            raise ValueError(f"unit must be 'paragraph' or 'sentence', got {unit!r}")
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        counts = [
            sum(len(p.split()) >= min_words for p in doc)
            for doc in self.train_paragraphs
        ]
        order = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
        if num_classes is not None:
            if not 2 <= num_classes <= len(order):
                raise ValueError(
                    f"num_classes must be in [2, {len(order)}], got {num_classes}"
                )
            order = order[:num_classes]
        part = self.train_paragraphs if split == "train" else self.test_paragraphs
        texts, labels = [], []
        for label, index in enumerate(order):
            for paragraph in part[index]:
                pieces = [paragraph] if unit == "paragraph" else split_sentences(paragraph)
                for text in pieces:
                    if len(text.split()) >= min_words:
                        texts.append(text)
                        labels.append(label)
        return texts, np.asarray(labels, "int32")


def split_paragraphs(text, keep_code=False):
    """The prose paragraphs of `text`: blank-line separated blocks with their
    wrapped lines joined; heading underlines and (unless `keep_code`)
    indented blocks (code, grammar rules) dropped."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [line for line in block.split("\n") if not _UNDERLINE.match(line)]
        lines = [line for line in lines if line.strip()]
        if not lines:
            continue
        if not keep_code and all(line.startswith((" ", "\t")) for line in lines):
            continue
        paragraph = " ".join(line.strip() for line in lines)
        if len(lines) == 1 and len(paragraph.split()) <= 8 and not keep_code:
            # A heading ("The if statement") rather than prose.
            if not paragraph.endswith((".", ":", "?", "!")):
                continue
        paragraphs.append(re.sub(r"\s+", " ", paragraph))
    return paragraphs


def split_sentences(text):
    """Sentences of `text` (a paragraph or a document), by a rule that knows
    common abbreviations; never returns empty strings.

    >>> split_sentences("It is short. See e.g. the next one! And (this).")
    ['It is short.', 'See e.g. the next one!', 'And (this).']
    """
    sentences = []
    for paragraph in split_paragraphs(text, keep_code=True) or [text]:
        pending = ""
        for piece in _SENTENCE_END.split(paragraph):
            pending = f"{pending} {piece}".strip() if pending else piece.strip()
            if not pending.endswith(_ABBREVIATIONS):
                sentences.append(pending)
                pending = ""
        if pending:
            sentences.append(pending)
    return [s for s in sentences if s]


def corpus_from_documents(names, texts, test_fraction=0.1, seed=0, keep_code=False):
    """A `TextCorpus` of raw document `texts`, a seeded `test_fraction` of
    each document's paragraphs held out (at least one when it has three).

    A paragraph that an earlier document already holds is dropped (the
    language reference repeats sections), so no held-out paragraph is also
    a training one."""
    if len(names) != len(texts):
        raise ValueError(f"{len(names)} names for {len(texts)} documents")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    kept_names, train, test = [], [], []
    seen = set()  # a paragraph repeated in a later document is dropped there
    for name, text in zip(names, texts):
        paragraphs = []
        for paragraph in split_paragraphs(text, keep_code=keep_code):
            if paragraph not in seen:
                seen.add(paragraph)
                paragraphs.append(paragraph)
        if not paragraphs:
            continue
        num_test = int(round(len(paragraphs) * test_fraction))
        if test_fraction > 0 and num_test == 0 and len(paragraphs) >= 3:
            num_test = 1
        held_out = set(rng.choice(len(paragraphs), num_test, replace=False).tolist())
        kept_names.append(name)
        train.append([p for i, p in enumerate(paragraphs) if i not in held_out])
        test.append([p for i, p in enumerate(paragraphs) if i in held_out])
    if not kept_names:
        raise ValueError(
            "the corpus has no text: every document was empty (or held only "
            "code/headings; pass keep_code=True to keep indented blocks)"
        )
    return TextCorpus(kept_names, train, test)


def load_python_docs(test_fraction=0.1, seed=0):
    """The embedded corpus: the Python language reference (`pydoc_data`)."""
    from pydoc_data.topics import topics

    names = sorted(topics)
    return corpus_from_documents(
        names, [topics[n] for n in names], test_fraction=test_fraction, seed=seed
    )


def load_python_docstrings(min_words=20, test_fraction=0.1, seed=0):
    """More prose of the same kind: the docstrings of the standard library.

    The standard library's source is parsed (never imported) and the
    docstrings of its modules, classes and functions of at least
    `min_words` words are kept, one document per module (~3,000 docstrings,
    ~200 k words on CPython 3.11; test suites and IDLE are skipped).
    Interactive examples (`>>>` lines) and indented blocks are dropped like
    code. A larger pretraining corpus than `load_python_docs`; the
    downstream task stays on the language reference.
    """
    import ast
    import sysconfig

    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo"}
    names, texts = [], []
    for path in sorted(root.rglob("*.py")):
        if skip & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        docstrings = []
        for node in ast.walk(tree):
            if isinstance(node, kinds):
                doc = ast.get_docstring(node)
                if doc and len(doc.split()) >= min_words:
                    lines = [
                        line for line in doc.split("\n")
                        if not line.lstrip().startswith((">>>", "..."))
                    ]
                    docstrings.append("\n".join(lines))
        if docstrings:
            names.append(str(path.relative_to(root).with_suffix("")).replace("/", "."))
            texts.append("\n\n".join(docstrings))
    return corpus_from_documents(names, texts, test_fraction=test_fraction, seed=seed)


def merge_corpora(*corpora):
    """One `TextCorpus` of several (names, training and held-out parts
    concatenated in order)."""
    return TextCorpus(
        [n for c in corpora for n in c.names],
        [p for c in corpora for p in c.train_paragraphs],
        [p for c in corpora for p in c.test_paragraphs],
    )


def load_text_files(path, test_fraction=0.1, seed=0, keep_code=False,
                    pattern="*.txt", encoding="utf-8"):
    """A `TextCorpus` of a UTF-8 text file or a folder of them (searched
    recursively with `pattern`); each file is one document.

    Raises:
        FileNotFoundError: no such path, or a folder without matching files.
        ValueError: a file that is not valid UTF-8 or that has no text.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob(pattern) if p.is_file())
        if not files:
            raise FileNotFoundError(f"no {pattern} files under {path}")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"no such text file or folder: {path}")
    names, texts = [], []
    for file in files:
        try:
            text = file.read_text(encoding=encoding)
        except UnicodeDecodeError as error:
            raise ValueError(f"{file} is not valid {encoding} text: {error}") from None
        if not text.strip():
            raise ValueError(f"{file} is empty")
        names.append(str(file.relative_to(path)) if path.is_dir() else file.name)
        texts.append(text)
    return corpus_from_documents(names, texts, test_fraction, seed, keep_code)


def load_tfds_text(name, data_dir=None, split="train", text_key="text",
                   max_examples=None, test_fraction=0.1, seed=0):
    """A `TextCorpus` of a TFDS text dataset prepared in a local `data_dir`
    (nothing is downloaded); each example is one document.

    Args:
        name: the TFDS name, e.g. "imdb_reviews" or "wikipedia/20230601.en".
        text_key: the feature that holds the text.
        max_examples: read at most this many examples.
    """
    from keras_ssl.data.images import tfds_builder, tfds_split

    builder, where = tfds_builder(name, data_dir)
    dataset = tfds_split(builder, name, where, split, max_examples)
    names, texts = [], []
    for i, example in enumerate(dataset):
        if text_key not in example:
            raise ValueError(
                f"{name} has no feature {text_key!r}; it has "
                f"{sorted(example)}: pass text_key="
            )
        value = example[text_key].numpy()
        text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        if text.strip():
            names.append(f"{name}:{split}:{i}")
            texts.append(text)
    return corpus_from_documents(names, texts, test_fraction, seed, keep_code=True)

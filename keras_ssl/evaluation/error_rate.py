"""Speech recognition error rates: edit distance, CER and WER.

The error rate of a corpus is the total number of edits (substitutions,
deletions, insertions) that turn each hypothesis into its reference,
divided by the total length of the references: characters for the
character error rate (spaces included), whitespace-separated words for the
word error rate. It can exceed 1 when hypotheses hold many insertions.

Example:

>>> edit_distance("kitten", "sitting")
3
>>> character_error_rate(["hello world"], ["hallo world"])
0.09090909090909091
>>> word_error_rate(["the cat sat", "on the mat"], ["the cat sat", "on mat"])
0.16666666666666666
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """The Levenshtein distance between two sequences (strings, lists of
    words or of ids): the fewest substitutions, deletions and insertions
    that turn `hypothesis` into `reference`.

    >>> edit_distance("flaw", "lawn"), edit_distance(["a", "b"], []), edit_distance("", "")
    (2, 2, 0)
    """
    reference, hypothesis = list(reference), list(hypothesis)
    if not reference or not hypothesis:
        return len(reference) + len(hypothesis)
    # Map the items to ints so a row of the table is one vectorised step.
    codes = {}
    ref = np.array([codes.setdefault(item, len(codes)) for item in reference])
    hyp = np.array([codes.setdefault(item, len(codes)) for item in hypothesis])
    previous = np.arange(len(hyp) + 1)
    for i, item in enumerate(ref, 1):
        # Substitution/match and deletion first, then insertions left to right.
        current = np.empty_like(previous)
        current[0] = i
        current[1:] = np.minimum(previous[:-1] + (hyp != item), previous[1:] + 1)
        # current[j] = min(current[j], current[j-1] + 1) for all j: a running
        # minimum of current[j] - j, plus j.
        offsets = np.arange(len(current))
        current = np.minimum.accumulate(current - offsets) + offsets
        previous = current
    return int(previous[-1])


def _pairs(references, hypotheses):
    if isinstance(references, str) != isinstance(hypotheses, str):
        raise ValueError("references and hypotheses must both be strings or both be lists")
    if isinstance(references, str):
        return [references], [hypotheses]
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(
            f"{len(references)} references for {len(hypotheses)} hypotheses: "
            "expected one hypothesis per reference"
        )
    for what, items in (("references", references), ("hypotheses", hypotheses)):
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise ValueError(f"{what}[{i}] is a {type(item).__name__}: expected a string")
    return references, hypotheses


def _error_rate(references, hypotheses, split):
    references, hypotheses = _pairs(references, hypotheses)
    edits = total = 0
    for reference, hypothesis in zip(references, hypotheses):
        reference, hypothesis = split(reference), split(hypothesis)
        edits += edit_distance(reference, hypothesis)
        total += len(reference)
    if total == 0:
        raise ValueError("the references are empty: an error rate needs reference text")
    return edits / total


def character_error_rate(references, hypotheses) -> float:
    """Total character edits over total reference characters (spaces
    count as characters).

    Args:
        references: the true transcripts (a list of strings, or one string).
        hypotheses: the recognised ones, same length.

    Raises:
        ValueError: different lengths, non-strings, or empty references.

    >>> character_error_rate(["abc", "de"], ["abd", ""])
    0.6
    """
    return _error_rate(references, hypotheses, list)


def word_error_rate(references, hypotheses) -> float:
    """Total word edits over total reference words (words split on
    whitespace). Arguments and errors as `character_error_rate`.

    >>> word_error_rate("the cat sat", "the bat sat down")
    0.6666666666666666
    """
    return _error_rate(references, hypotheses, str.split)

"""Data shipped with embedlab: the WordNet demo corpus (WordNet 3.0 licence in WORDNET_LICENSE.txt)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["wordnet_demo_path"]


def wordnet_demo_path() -> Path:
    """Path of the bundled demo corpus: 19,980 WordNet 3.0 synsets, up to 501 from each of the 45 lexnames.

    A JSONL file (gzip) with ``id`` (synset id), ``text`` (``"first word: definition"``) and ``label``
    (lexname). Built by ``scripts/build_demo_corpus.py``; WordNet 3.0 licence in ``WORDNET_LICENSE.txt`` beside it.

    Examples
    --------
    >>> wordnet_demo_path().name
    'wordnet_demo.jsonl.gz'
    """
    return Path(str(resources.files("embedlab.datasets").joinpath("wordnet_demo.jsonl.gz")))

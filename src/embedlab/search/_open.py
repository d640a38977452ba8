"""Opening what ``embedlab search`` serves: an index or a compressed collection, told apart by its manifest."""

from __future__ import annotations

import os
from pathlib import Path

from embedlab.compress import COLLECTION_MANIFEST, CompressedCollection
from embedlab.exceptions import EmbeddingDataError
from embedlab.search._index import MANIFEST as INDEX_MANIFEST
from embedlab.search._index import Index

__all__ = ["open_searcher"]


def open_searcher(path: str | os.PathLike) -> Index | CompressedCollection:
    """The index or compressed collection saved in the directory ``path``, checked as its ``open`` checks it.

    Raises
    ------
    EmbeddingDataError
        When ``path`` holds neither, or what it holds is damaged.
    """
    root = Path(path)
    if (root / INDEX_MANIFEST).is_file():
        return Index.open(root)
    if (root / COLLECTION_MANIFEST).is_file():
        return CompressedCollection.open(root)
    raise EmbeddingDataError(
        f"{root} is neither an embedlab index ({INDEX_MANIFEST}) nor a compressed collection ({COLLECTION_MANIFEST}); "
        "create one with 'embedlab index build' or 'embedlab compress apply'."
    )

"""EmbeddingSet: the one in-memory representation of a collection of embeddings used everywhere."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from embedlab._checks import check_int
from embedlab._version import __version__
from embedlab.exceptions import ConfigurationError, EmbeddingDataError
from embedlab.io.validation import OnInvalid, ValidationReport, check_vectors
from embedlab.io.writers import write_table

__all__ = ["ID_COLUMN", "PROVENANCE_KEY", "VECTOR_COLUMN", "EmbeddingSet"]

logger = logging.getLogger(__name__)

ID_COLUMN = "id"
VECTOR_COLUMN = "embedding"
PROVENANCE_KEY = b"embedlab"


def sample_positions(n_rows: int, n: int, random_state: int | None = 0) -> np.ndarray:
    """The ascending positions of a reproducible uniform sample of ``n`` of ``n_rows`` rows without replacement:
    every row when ``n >= n_rows``. :meth:`EmbeddingSet.sample` and ``load(sample=)`` draw the same rows.

    Examples
    --------
    >>> sample_positions(10, 3, random_state=0).tolist(), sample_positions(3, 5).tolist()
    ([5, 6, 9], [0, 1, 2])
    """
    n = check_int(n, "n")
    if n >= n_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(random_state).choice(n_rows, size=n, replace=False))


class EmbeddingSet:
    """A validated collection of embeddings with ids, optional metadata columns and provenance.

    Parameters
    ----------
    vectors : array-like of shape (n, d)
        The embeddings. Held as C-contiguous float32; a float32 memory map is kept as a view of the map, not copied.
    ids : array-like of shape (n,), optional
        Unique string or integer ids. Defaults to the row numbers ``0 .. n-1``.
    metadata : pyarrow.Table or mapping of column name to array-like, optional
        Per-row columns such as labels or texts, ``n`` rows long.
    source : str, optional
        Where the vectors came from (a file path).
    model : str, optional
        The model that produced them.
    on_invalid : {"raise", "drop"}, default="raise"
        What to do with rows holding NaN or Inf values, all-zero vectors, or repeated ids: fail, or drop
        them and record each dropped id in :attr:`validation`.
    name : str, optional
        How to call this input in error messages; defaults to ``source`` or ``"vectors"``.

    Attributes
    ----------
    vectors : numpy.ndarray of shape (n, d), float32
    ids : numpy.ndarray of shape (n,)
    metadata : pyarrow.Table or None
    validation : ValidationReport
        What validation dropped (nothing unless ``on_invalid="drop"``).
    cache : dict
        Derived results keyed by what computed them (the neighbour engine keeps its kNN graphs here), so
        each is computed once per set.

    Examples
    --------
    >>> import numpy as np
    >>> emb = EmbeddingSet(np.eye(3), ids=["a", "b", "c"], metadata={"label": [0, 1, 1]})
    >>> len(emb), emb.dim, emb.column("label").tolist()
    (3, 3, [0, 1, 1])
    """

    def __init__(
        self,
        vectors: object,
        ids: object = None,
        metadata: pa.Table | Mapping[str, Any] | None = None,
        *,
        source: str | None = None,
        model: str | None = None,
        on_invalid: OnInvalid = "raise",
        name: str | None = None,
    ) -> None:
        label = name or source or "vectors"
        matrix, id_array, report = check_vectors(vectors, name=label, ids=_ids_or_none(ids), on_invalid=on_invalid)
        n_input = report.n_input
        table = _as_metadata_table(metadata, n_input, label)
        if report.n_dropped:
            kept = _kept_positions(report)
            table = None if table is None else table.take(pa.array(kept))
            logger.warning("%s: dropped %d invalid row(s)", label, report.n_dropped)
        self.vectors: np.ndarray = matrix
        self.ids: np.ndarray = _kept_positions(report) if id_array is None else id_array
        self.metadata: pa.Table | None = table
        self.source = source
        self.model = model
        self.validation: ValidationReport = report
        self.cache: dict[tuple, Any] = {}

    @classmethod
    def _trusted(
        cls,
        vectors: np.ndarray,
        ids: np.ndarray,
        metadata: pa.Table | None,
        source: str | None,
        model: str | None,
        validation: ValidationReport,
    ) -> EmbeddingSet:
        """Build from parts that are already validated (subsets of a validated set)."""
        emb = cls.__new__(cls)
        emb.vectors, emb.ids, emb.metadata = vectors, ids, metadata
        emb.source, emb.model, emb.validation = source, model, validation
        emb.cache = {}
        return emb

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""
        return int(self.vectors.shape[1])

    @property
    def columns(self) -> list[str]:
        """Names of the metadata columns."""
        return [] if self.metadata is None else list(self.metadata.column_names)

    def __repr__(self) -> str:
        cols = f", metadata={self.columns}" if self.columns else ""
        src = f", source={self.source!r}" if self.source else ""
        return f"EmbeddingSet(n={len(self)}, dim={self.dim}{cols}{src})"

    def column(self, name: str) -> np.ndarray:
        """One metadata column as a numpy array.

        Raises
        ------
        EmbeddingDataError
            If there is no such column; the message lists the columns there are.
        """
        if name not in self.columns:
            have = ", ".join(self.columns) or "none"
            raise EmbeddingDataError(
                f"{self.source or 'the embedding set'} has no column {name!r} (metadata columns: {have})."
            )
        return self.metadata.column(name).to_numpy(zero_copy_only=False)

    def take(self, positions: np.ndarray | list[int]) -> EmbeddingSet:
        """The rows at ``positions``, in that order, as a new set (provenance kept, cache not)."""
        index = np.asarray(positions, dtype=np.int64)
        return EmbeddingSet._trusted(
            np.ascontiguousarray(self.vectors[index]),
            self.ids[index],
            None if self.metadata is None else self.metadata.take(pa.array(index)),
            self.source,
            self.model,
            self.validation,
        )

    def sample(self, n: int, random_state: int | None = 0) -> EmbeddingSet:
        """A reproducible uniform sample of ``n`` rows without replacement, in their original order.

        Returns the set itself when ``n >= len(self)``.

        Examples
        --------
        >>> import numpy as np
        >>> emb = EmbeddingSet(np.random.default_rng(0).normal(size=(100, 4)))
        >>> emb.sample(5, random_state=1).ids.tolist() == emb.sample(5, random_state=1).ids.tolist()
        True
        """
        positions = self.sample_positions(n, random_state)
        return self if positions.size == len(self) else self.take(positions)

    def sample_positions(self, n: int, random_state: int | None = 0) -> np.ndarray:
        """The ascending row positions :meth:`sample` keeps: all rows when ``n >= len(self)``.

        Examples
        --------
        >>> import numpy as np
        >>> emb = EmbeddingSet(np.random.default_rng(0).normal(size=(100, 4)))
        >>> positions = emb.sample_positions(5, random_state=1)
        >>> positions.tolist() == sorted(positions.tolist()), emb.sample_positions(200).size
        (True, 100)
        """
        return sample_positions(len(self), n, random_state)

    def provenance(self) -> dict[str, Any]:
        """Where the set came from, as stored in the files embedlab writes."""
        return {"source": self.source, "model": self.model, "embedlab_version": __version__}

    def to_table(self) -> pa.Table:
        """The set as an Arrow table: ``id``, ``embedding`` (fixed-size list of float32), metadata columns."""
        flat = pa.array(np.ascontiguousarray(self.vectors).reshape(-1))
        columns = {
            ID_COLUMN: pa.array(self.ids),
            VECTOR_COLUMN: pa.FixedSizeListArray.from_arrays(flat, self.dim),
        }
        for name in self.columns:
            if name in columns:
                raise ConfigurationError(f"metadata column {name!r} clashes with a reserved column name.")
            columns[name] = self.metadata.column(name)
        table = pa.table(columns)
        return table.replace_schema_metadata({PROVENANCE_KEY: json.dumps(self.provenance()).encode()})

    def to_parquet(self, path: str | os.PathLike) -> Path:
        """Write the set to Parquet atomically; :func:`embedlab.load` reads it back unchanged."""
        return write_table(self.to_table(), path)


def _ids_or_none(ids: object) -> np.ndarray | None:
    if ids is None:
        return None
    if isinstance(ids, (pa.Array, pa.ChunkedArray)):
        return ids.to_numpy(zero_copy_only=False)
    return np.asarray(ids)


def _as_metadata_table(metadata: pa.Table | Mapping[str, Any] | None, n: int, label: str) -> pa.Table | None:
    if metadata is None:
        return None
    table = metadata if isinstance(metadata, pa.Table) else pa.table(dict(metadata))
    if table.num_columns == 0:
        return None
    if table.num_rows != n:
        raise EmbeddingDataError(f"{label}: {n} vectors but the metadata has {table.num_rows} rows.")
    return table


def _kept_positions(report: ValidationReport) -> np.ndarray:
    keep = np.ones(report.n_input, dtype=bool)
    for dropped in report.dropped:
        keep[dropped.positions] = False
    return np.flatnonzero(keep)

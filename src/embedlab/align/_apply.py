"""Applying a fitted adapter to a whole set: a Parquet file with the same ids, columns and provenance, or a new
store collection streamed batch by batch."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from embedlab._progress import NULL_PROGRESS, ProgressReporter
from embedlab.align._adapters import Adapter, load_adapter
from embedlab.exceptions import ConfigurationError
from embedlab.io import EmbeddingSet, load
from embedlab.io.stores import import_store, is_store_uri
from embedlab.io.validation import OnInvalid

__all__ = ["AdapterApplication", "apply_adapter"]


@dataclass(frozen=True)
class AdapterApplication:
    """What :func:`apply_adapter` wrote: ``n`` rows of ``data`` mapped from ``dim_in`` to ``dim_out`` dimensions."""

    adapter: str
    method: str
    data: str
    output: str
    n: int
    dim_in: int
    dim_out: int

    def to_dict(self) -> dict:
        return asdict(self)


def apply_adapter(
    adapter: Adapter | str | os.PathLike,
    data: str | os.PathLike,
    output: str | os.PathLike,
    *,
    column: str | None = None,
    id_column: str | None = None,
    on_invalid: OnInvalid = "raise",
    progress: ProgressReporter = NULL_PROGRESS,
) -> AdapterApplication:
    """Map every row of ``data`` with ``adapter`` and write them, with the same ids and columns, to ``output``.

    Parameters
    ----------
    adapter : Adapter or path-like
        A fitted adapter, or the JSON file :meth:`Adapter.save` wrote.
    data : path-like or str
        Any file :func:`embedlab.load` reads, or a store URI.
    output : path-like or str
        A Parquet file (written atomically; its provenance names the adapter), or a store URI of a collection that
        does not exist yet (streamed in batches through :func:`embedlab.io.stores.import_store`; mapped vectors
        never overwrite a collection).
    column, id_column : str, optional
    on_invalid : {"raise", "drop"}, default="raise"
        ``"drop"`` is for files only: a store import refuses invalid rows.
    progress : ProgressReporter, optional

    Returns
    -------
    AdapterApplication

    Raises
    ------
    EmbeddingDataError
        On invalid rows, or rows of another dimension than the adapter's source space (the file is named).
    ConfigurationError
        On ``on_invalid="drop"`` into a store.
    """
    name = "an adapter" if isinstance(adapter, Adapter) else str(adapter)
    fitted = adapter if isinstance(adapter, Adapter) else load_adapter(adapter)
    if is_store_uri(str(output)):
        if on_invalid != "raise":
            raise ConfigurationError("invalid rows cannot be dropped when the output is a store: fix the rows first.")
        result = import_store(
            data,
            str(output),
            mode="create",
            column=column,
            id_column=id_column,
            transform=lambda vectors: fitted.transform(vectors, name=str(data)),
            progress=progress,
        )
        n = result.n_rows
    else:
        emb = load(data, column=column, id_column=id_column, on_invalid=on_invalid)
        mapped = fitted.transform(emb.vectors, name=str(data))
        model = f"{emb.model or 'unknown'} via {Path(name).name}"
        EmbeddingSet(mapped, emb.ids, emb.metadata, source=str(data), model=model).to_parquet(output)
        n = len(emb)
    return AdapterApplication(
        name, fitted.name, str(data), str(output), n, int(fitted.n_features_in_), int(fitted.n_features_out_)
    )

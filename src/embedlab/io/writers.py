"""Atomic output: every file embedlab writes goes through here, so a crash never leaves half a file."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["atomic_directory", "atomic_path", "remove_leftovers", "write_json", "write_table"]

_ROW_GROUP_BYTES = 64 * 2**20


#: This machine, in the names of temporaries, so that only its own dead writers' leftovers are removed (a folder
#: shared with other machines may hold temporaries of live writers whose process ids mean nothing here).
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _beside(target: Path, kind: str) -> Path:
    """A hidden name beside ``target`` for this process: ``.NAME.HOST-PID.RANDOM.KIND``."""
    return target.with_name(f".{target.name}.{_HOST}-{os.getpid()}.{secrets.token_hex(4)}.{kind}")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_leftovers(target: str | os.PathLike) -> list[Path]:
    """Remove what writers of ``target`` that were killed on this machine left beside it: their temporary files
    and folders, and a replaced output a killed :func:`atomic_directory` had not deleted yet. A writer that is
    gone can never finish them; without this, a killed job would keep its space until a person found them.

    Returns
    -------
    list of pathlib.Path
        What was removed.
    """
    target = Path(target)
    prefix = f".{target.name}.{_HOST}-"
    removed = []
    for path in target.parent.glob(glob.escape(prefix) + "*"):
        pid, _, rest = path.name[len(prefix) :].partition(".")
        if not pid.isdigit() or not rest.endswith((".tmp", ".old")) or _running(int(pid)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was; what killed writers of ``path``
    left beside it is removed first (:func:`remove_leftovers`). With ``durable=False`` the
    file is renamed without an fsync: a killed process still leaves it whole or absent, but a machine that
    loses power may leave it short (for files a reader checks before trusting, like an export's kept batches).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    # Not mkstemp: the writer creates the file, so it gets the usual permissions (umask), not 0600.
    tmp = _beside(target, "tmp")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_directory(path: str | os.PathLike, *, replaceable: str) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success its files are fsynced and it replaces ``path``.

    An existing ``path`` is replaced only when it holds the file ``replaceable`` (an earlier output of the
    same kind) or is empty; anything else is refused, so a typo never deletes a user's folder. On any
    exception the temporary directory is removed and ``path`` is left as it was.

    Raises
    ------
    FileExistsError
        When ``path`` exists and is not an earlier output (or an empty directory).
    """
    target = Path(path)
    if target.exists() and not (target.is_dir() and ((target / replaceable).exists() or not any(target.iterdir()))):
        raise FileExistsError(
            f"{target} exists and is not an earlier output (no {replaceable} in it); choose another path or remove it."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    tmp, old = _beside(target, "tmp"), _beside(target, "old")
    tmp.mkdir()
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                with open(file, "rb") as handle:
                    os.fsync(handle.fileno())
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def write_table(table: pa.Table, path: str | os.PathLike) -> Path:
    """Write an Arrow table to Parquet atomically, in row groups of about 64 MB.

    Parameters
    ----------
    table : pyarrow.Table
        The table; its schema metadata is kept.
    path : path-like
        Destination ``.parquet`` file.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    row_bytes = max(1, table.nbytes // max(table.num_rows, 1))
    row_group_size = max(1024, _ROW_GROUP_BYTES // row_bytes)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, compression="zstd")
    return Path(path)


def write_json(document: object, path: str | os.PathLike) -> Path:
    """Write a JSON document atomically (UTF-8, indented)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(path)

"""Store URIs: which store, where, which collection, and the credentials that never appear in them."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote

from embedlab.exceptions import ConfigurationError

__all__ = ["SCHEMES", "StoreURI", "is_store_uri", "parse_uri", "read_secret", "scrub"]

#: Every scheme a store URI may start with, and the store that serves it.
SCHEMES: dict[str, str] = {
    "lancedb": "lancedb",
    "qdrant": "qdrant",
    "qdrant+http": "qdrant",
    "qdrant+https": "qdrant",
    "milvus": "milvus",
    "milvus+http": "milvus",
    "milvus+https": "milvus",
    "chroma": "chroma",
    "chroma+http": "chroma",
    "chroma+https": "chroma",
    "postgresql": "pgvector",
    "postgres": "pgvector",
}

#: The environment variable naming a credentials file, for commands that take no --credentials.
CREDENTIALS_VARIABLE = "EMBEDLAB_CREDENTIALS_FILE"

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)


def is_store_uri(text: object) -> bool:
    """Whether ``text`` names a vector store (``lancedb://...``, ``postgresql://...``) rather than a file.

    Examples
    --------
    >>> is_store_uri("qdrant://data/q/docs"), is_store_uri("data/x.parquet")
    (True, False)
    """
    if not isinstance(text, str):
        return False
    found = _SCHEME.match(text)
    return bool(found and found.group(1).lower() in SCHEMES)


@dataclass(frozen=True)
class StoreURI:
    """A parsed store URI.

    Attributes
    ----------
    text : str
        The URI as given (it holds no secret: :func:`parse_uri` refuses passwords in it).
    scheme : str
        As written, lower-cased (``qdrant+http``).
    store : str
        The store that serves it: ``lancedb``, ``qdrant``, ``milvus``, ``chroma`` or ``pgvector``.
    location : str
        A folder or file (embedded stores) or ``host:port`` (servers).
    collection : str
        The collection or table.
    options : dict
        The query parameters (``column``, ``id``, ``table``, ...).
    remote : bool
        Whether the store is a server reached over the network.
    """

    text: str
    scheme: str
    store: str
    location: str
    collection: str
    options: dict[str, str] = field(default_factory=dict)
    remote: bool = False

    def __str__(self) -> str:
        return self.text

    @property
    def path(self) -> Path:
        """The folder or file of an embedded store."""
        return Path(self.location)


def parse_uri(text: str) -> StoreURI:
    """Parse a store URI.

    ``lancedb://DIR/TABLE``, ``qdrant://DIR/COLLECTION``, ``qdrant+http://HOST:PORT/COLLECTION``,
    ``milvus://FILE.db/COLLECTION``, ``milvus+http://HOST:PORT/COLLECTION``, ``chroma://DIR/COLLECTION``,
    ``chroma+http://HOST:PORT/COLLECTION``, and ``postgresql://USER@HOST:PORT/DB?table=T`` (``column=`` the vector
    column, ``id=`` the id column; other parameters go to libpq). A path after ``//`` is relative unless it
    starts with ``/`` (``lancedb:///abs/dir/t``). Options ``column`` and ``id`` are accepted by every store.

    Raises
    ------
    ConfigurationError
        For an unknown scheme, a missing collection, or a password written into the URI.

    Examples
    --------
    >>> uri = parse_uri("lancedb://data/db/docs?column=emb")
    >>> uri.store, uri.location, uri.collection, uri.options
    ('lancedb', 'data/db', 'docs', {'column': 'emb'})
    >>> parse_uri("postgresql://me@localhost:5432/shop?table=items").collection
    'items'
    """
    found = _SCHEME.match(text)
    scheme = found.group(1).lower() if found else ""
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"{text!r} is not a store URI; embedlab reads {', '.join(s + '://' for s in SCHEMES)} (see docs/stores.md)."
        )
    store = SCHEMES[scheme]
    rest, _, query = text[found.end() :].partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    if store == "pgvector":
        return _parse_postgres(text, scheme, rest, options)
    remote = "+" in scheme
    if remote and "@" in rest.split("/", 1)[0]:
        raise ConfigurationError(
            f"{_scheme_only(text)}: a store URI carries no credentials; put the key or token in the environment "
            "or in a file named by --credentials."
        )
    location, _, collection = rest.rstrip("/").rpartition("/")
    if not collection or not location:
        what = "HOST:PORT/COLLECTION" if remote else "PATH/COLLECTION"
        raise ConfigurationError(f"{text}: expected {scheme}://{what}; the collection is missing.")
    return StoreURI(text, scheme, store, unquote(location), unquote(collection), options, remote)


def _parse_postgres(text: str, scheme: str, rest: str, options: dict[str, str]) -> StoreURI:
    authority, _, database = rest.partition("/")
    user_info, at, _host = authority.rpartition("@")
    if at and ":" in user_info:
        raise ConfigurationError(
            f"{_scheme_only(text)}: the URI holds a password; embedlab never takes one from a URI (it would show in "
            "shell history and process lists). Set PGPASSWORD, use ~/.pgpass, or name a file with --credentials."
        )
    table = options.get("table")
    if not table:
        raise ConfigurationError(f"{text}: name the table with ?table=NAME (and ?column=, ?id= when not the defaults).")
    return StoreURI(text, scheme, "pgvector", authority + "/" + database, table, options, True)


def _scheme_only(text: str) -> str:
    return text.split("://", 1)[0] + "://..."


def read_secret(credentials: str | os.PathLike | None, variable: str | None) -> str | None:
    """The store's secret from the file ``credentials`` names (its first line), else from ``variable``, else
    from the file ``EMBEDLAB_CREDENTIALS_FILE`` names.

    Raises
    ------
    ConfigurationError
        When the file cannot be read or is empty (its contents are never shown).
    """
    if credentials is not None:
        path = Path(credentials)
        try:
            secret = path.read_text(encoding="utf-8").strip().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigurationError(f"{path}: the credentials file cannot be read ({type(err).__name__}).") from err
        if not secret or not secret[0].strip():
            raise ConfigurationError(f"{path}: the credentials file is empty.")
        return secret[0].strip()
    if variable and os.environ.get(variable):
        return os.environ[variable]
    if os.environ.get(CREDENTIALS_VARIABLE):
        return read_secret(os.environ[CREDENTIALS_VARIABLE], None)
    return None


def scrub(message: str, secret: str | None) -> str:
    """``message`` with every occurrence of ``secret`` replaced, for errors raised from a client's exception.

    Examples
    --------
    >>> scrub("auth failed for key s3cr3t", "s3cr3t")
    'auth failed for key ***'
    """
    if secret:
        message = message.replace(secret, "***")
    return re.sub(r"(password|passwd|api[_-]?key|token)=\S+", r"\1=***", message, flags=re.IGNORECASE)

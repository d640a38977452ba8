"""The ``embedlab`` command: registers each command group's module on one Typer app."""

from __future__ import annotations

import typer

from embedlab._version import __version__
from embedlab.cli.align import align_app
from embedlab.cli.cluster import cluster
from embedlab.cli.compare import compare
from embedlab.cli.compress import compress_app
from embedlab.cli.curate import curate_app
from embedlab.cli.demo import demo
from embedlab.cli.embed import embed
from embedlab.cli.index import index_app, search
from embedlab.cli.info import info
from embedlab.cli.inspect import inspect
from embedlab.cli.knn import knn
from embedlab.cli.labels import labels_app
from embedlab.cli.multivector import multivector_app
from embedlab.cli.report import report
from embedlab.cli.store import store_app

app = typer.Typer(
    name="embedlab",
    help="Inspect, cluster, compress, search, compare and curate collections of learned embeddings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(info)
app.command()(inspect)
app.command()(embed)
app.command()(knn)
app.command()(cluster)
app.add_typer(compress_app)
app.add_typer(curate_app)
app.add_typer(index_app)
app.command()(search)
app.command()(compare)
app.add_typer(align_app)
app.add_typer(labels_app)
app.add_typer(store_app)
app.add_typer(multivector_app)
app.command()(report)
app.command()(demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"embedlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Inspect, cluster, compress, search, compare and curate collections of learned embeddings."""


def main() -> None:
    """Entry point of the ``embedlab`` console script."""
    app()

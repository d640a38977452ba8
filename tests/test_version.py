"""The version is declared once (``embedlab/_version.py``): the package, its metadata and the CLI agree."""

from __future__ import annotations

from importlib import metadata

from typer.testing import CliRunner

import embedlab
from embedlab._version import __version__
from embedlab.cli.app import app


def test_the_package_its_metadata_and_the_cli_give_one_version():
    assert embedlab.__version__ == __version__ == metadata.version("embedlab")
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"embedlab {__version__}"

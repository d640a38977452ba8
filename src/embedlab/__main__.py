"""``python -m embedlab`` runs the command-line interface."""

from embedlab.cli.app import main

main()

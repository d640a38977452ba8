"""Command-line interface (Typer + Rich): a thin layer that parses, calls one API function, and renders."""

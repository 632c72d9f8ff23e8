"""`python -m era_tools` runs the `era` command."""

from .cli import main

main(prog_name="era")

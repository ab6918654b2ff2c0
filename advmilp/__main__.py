"""`python -m advmilp` runs the command line."""

from .cli import main

main()

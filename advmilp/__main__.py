"""`python -m advmilp` runs the command line."""

from advmilp.cli import main

main()

"""`python -m tabpipe`: the `tabpipe` command run from this checkout's code (tests and scratch projects use it)."""

from tabpipe.cli.app import main

main()

"""``python -m theazo`` is the ``theazo`` command."""

from theazo.cli.main import main

main()

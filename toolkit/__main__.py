"""``python -m toolkit``: the same as the ``stl`` command."""

from toolkit.cli import main

main()

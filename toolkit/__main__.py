"""``python -m toolkit``: the same as the ``stl`` command."""

from toolkit.entry import main

main()

"""``python -m ese`` is the ``ese`` command."""

from ese.cli import main

main()

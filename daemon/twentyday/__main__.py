"""``python -m twentyday``: the same as the ``twentyday`` console script."""

from twentyday.cli import main

main()

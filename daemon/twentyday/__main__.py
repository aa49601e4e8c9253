"""``python -m twentyday``: the same as the ``twentyday`` console script."""

from .cli import main

main()

"""``python -m dockyard.runtime`` is ``dockyard-runtime``."""

from .cli import main

main()

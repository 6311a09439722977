"""``python -m cnnprobe``: the same as the ``cnnprobe`` command."""

from .console import main

main()

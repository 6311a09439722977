"""The ``cnnprobe`` console script: start quickly, run one command, leave quickly.

Nothing here imports typer before the cyclic garbage collector is paused. Start-up creates tens
of thousands of objects (functions, classes) and an analysis hundreds of thousands more, nearly
all acyclic and alive until exit: collections would only scan them, and reference counting frees
the rest. The collector stays paused for the short commands; ``shift-test``, which runs a model
through a framework for a long time, resumes it.
"""

from __future__ import annotations

import gc
import os
import sys


def main() -> None:
    """Run the command line, flush, and leave without tearing the interpreter down.

    Freeing the analysis's many small objects and every imported module at exit takes a tenth
    of the run on large models and changes nothing once the output is flushed (the same choice
    as mypy's hard exit). Exceptions other than ``SystemExit`` still leave the normal way.
    """
    gc.disable()
    from .cli import run

    code = run(sys.argv[1:])
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # reader gone (| head), or stream closed
        pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()

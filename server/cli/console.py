"""The ``lienthong`` console script's module: a user sees our messages, not our libraries' warnings
(server/runtime/library_warnings.py).

The filters are installed when this module is imported, not only when :func:`run` is called:
the worker processes of ``serve --workers N`` (spawn) start by re-importing the console script,
which imports this module, and the verification pools (forkserver) import it first
(``PROCESS_SETUP``), before either imports a library. ``main`` installs them too.
"""

from __future__ import annotations

from server.runtime.library_warnings import quiet_library_warnings

quiet_library_warnings()


def run() -> int:
    """Entry point of the ``lienthong`` console script."""
    from server.cli import main

    return main()

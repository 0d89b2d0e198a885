"""The ``lienthong`` console script's module: a user sees our messages, not our libraries' warnings.

A library's warning (``CryptographyDeprecationWarning: DSA is deprecated`` printed when pyHanko is
imported under cryptography 51, say) is addressed to us, the developers, not to the clerk running
``lienthong agency list``: :func:`server.cli.quiet_library_warnings` hides it (``main`` calls it
first too).

The filters are installed when this module is imported, not only when :func:`run` is called:
the worker processes of ``serve --workers N`` (spawn) start by re-importing the console script,
which imports this module, and the verification pools (forkserver) import it first
(``server.cli.PROCESS_SETUP``), before either imports a library.
"""

from __future__ import annotations

from server.cli import quiet_library_warnings

quiet_library_warnings()


def run() -> int:
    """Entry point of the ``lienthong`` console script."""
    from server.cli import main

    return main()

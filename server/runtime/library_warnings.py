"""Library warnings are for us, the developers, not for the people running the axis.

``CryptographyDeprecationWarning: DSA is deprecated``, printed when pyHanko is imported under
cryptography 51, says nothing a clerk running ``lienthong agency list`` or an operator reading
``lienthong serve``'s log can act on. The console script (server/cli/console.py) and the worker
processes of the verifier pools (:data:`PROCESS_SETUP`) hide them; ``pytest`` shows them all.
"""

from __future__ import annotations

import sys
import warnings

# The modules a warning is attributed to (its ``module`` after ``stacklevel``) that still show.
OUR_MODULES = r"(edxml|signing|storage|server)(\..*)?$"


def quiet_library_warnings() -> None:
    """Ignore other packages' warnings, show ours; a no-op when ``-W``/``PYTHONWARNINGS`` is set.

    A library's warning is addressed to us, the developers, not to the clerk running a command:
    hidden when raised from another package's code, shown when raised from ours (``edxml``,
    ``signing``, ``storage``, ``server``), our own deprecations included. Whoever sets ``-W`` or
    ``PYTHONWARNINGS`` asked to see warnings.
    """
    if sys.warnoptions:
        return
    warnings.filterwarnings("ignore")
    # Inserted in front of the line above, so checked first: our modules' warnings, once each.
    warnings.filterwarnings("default", module=OUR_MODULES)


# What a pool of worker processes imports first (signing.isolation.VerifierPool's ``preload``):
# the console module, whose import hides other packages' warnings (server/cli/console.py).
PROCESS_SETUP = ("server.cli.console",)

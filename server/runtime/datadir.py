"""The data directory of an axis: created private, and made private at start-up if it is not.

Directories 0700 and files 0600 whatever the umask (storage/private.py). ``serve`` and ``init``
call :func:`prepare_data_dir`; a data directory made by an older version is tightened there
once (docs/operations.md, "Files at rest").
"""

from __future__ import annotations

import logging

from server.runtime.config import Config
from storage.private import Tightened, make_dir, tighten

log = logging.getLogger("lienthong.storage")


def prepare_data_dir(config: Config, *, tighten_existing: bool = True) -> Tightened | None:
    """Create the data, object and spool directories (0700); with ``tighten_existing``, take
    the group and other bits off what is already there and return what changed (logged)."""
    make_dir(config.storage.data_dir)
    for directory in (config.objects_dir, config.spool_dir):
        make_dir(directory)
    if not tighten_existing:
        return None
    done = tighten(config.storage.data_dir)
    if done.changed:
        log.warning(
            "made the data directory private (directories 0700, files 0600)",
            extra={"changed": done.changed, "data_dir": str(config.storage.data_dir)},
        )
    if done.failed:
        log.error(
            "some files of the data directory could not be made private",
            extra={"failed": done.failed, "first": done.first_failure},
        )
    return done

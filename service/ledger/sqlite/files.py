"""The ledger's files are the operator's alone: orders, certificates and audit entries are private.

SQLite creates the ``-wal`` and ``-shm`` files with the mode of the database file, so creating
the database file ``0600`` before SQLite opens it makes all three ``0600``. A file left looser by
an earlier version is tightened (and the log says so); a folder others can read or enter is
reported, not changed (it is the operator's, and may hold other things).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["private_files"]

log = logging.getLogger(__name__)

FILE_MODE = 0o600
FOLDER_MODE = 0o700
SIDE_FILES = ("-wal", "-shm", "-journal")


def private_files(path: Path) -> None:
    """Create ``path`` empty with mode 0600 when it is missing, tighten it and its side files to
    0600, and warn when its folder is open to others. A missing folder is left for SQLite to report."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass
    except OSError:
        return  # no folder, or not writable: opening the ledger reports it, naming the file
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILES)):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                os.chmod(file, FILE_MODE)
                log.warning("ledger file %s was readable by others (mode %04o); it is now %04o", file, mode,
                            FILE_MODE)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot make ledger file %s private: %s", file, exc.strerror or exc)
    folder_mode = stat.S_IMODE(path.parent.stat().st_mode)
    if folder_mode & 0o077:
        log.warning("the ledger's folder %s is open to others (mode %04o); make it %04o", path.parent,
                    folder_mode, FOLDER_MODE)

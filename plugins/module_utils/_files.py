# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one way this collection writes files on a managed host (secrets included).

Every write goes: ``tempfile.mkstemp`` in the target directory (same file system, so the final
rename is atomic) -> ``module.add_cleanup_file`` (removed if the module dies) -> ``fchmod 0600``
before the first byte -> write + fsync -> optional ``module.backup_local`` -> ``module.atomic_move``
-> fsync of the directory (the rename itself survives a power cut) ->
``module.set_fs_attributes_if_different`` (owner, group, mode).  A failure never leaves a
half-written destination; the content never passes through any other path.

API (all functions respect ``module.check_mode``: they report what would change and touch nothing):

``FileError(_errors.DmsError)``
    Raised with a message naming the problem and the fix (e.g. unwritable directory).
``ensure_directory(module, path, mode=0o700) -> bool``
    Create ``path`` (and parents) if missing; ``True`` if it was (or would be) created.
    Raises ``FileError`` if it exists and is not a directory or cannot be created.
``check_writable(path)``
    Raise ``FileError`` unless a file can be created in directory ``path`` (call before writing
    anything, so a run fails before the first file and writes nothing).
``write_file(module, path, content, mode=0o600, owner=None, group=None, backup=False) -> dict``
    Replace ``path`` with ``content`` (bytes).  Returns ``{"changed": True, "backup_file": str|None}``.
``set_attributes(module, path, mode=None, owner=None, group=None) -> bool``
    Apply owner/group/mode to an existing file whose content is already right; ``True`` if changed.
``remove_file(module, path, backup=False) -> dict``
    Remove ``path`` if present.  Returns ``{"changed": bool, "backup_file": str|None}``.
``read_file(path) -> bytes|None``
    Current content, ``None`` if the file does not exist.
``fsync_directory(directory)``
    Make a rename or removal in ``directory`` durable (``write_file`` and ``remove_file`` call it).
"""

from __future__ import annotations

import errno
import os
import tempfile

from ansible_collections.dkcustoms.dms.plugins.module_utils import _errors


class FileError(_errors.DmsError):
    """A file could not be written or removed; the message names the problem and the fix."""

    reason = "file_error"


def _file_args(path, mode, owner, group):
    # SELinux context is left as the directory gives it (None = do not manage).
    return {"path": path, "mode": mode, "owner": owner, "group": group,
            "secontext": [None, None, None], "attributes": None}


def read_file(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise FileError("%s is a directory, not a file. Fix: remove or rename it." % path)
    except PermissionError:
        raise FileError("%s cannot be read: permission denied. Fix: run with become or fix its "
                        "permissions." % path)


def ensure_directory(module, path, mode=0o700):
    if os.path.isdir(path):
        return False
    if os.path.lexists(path):
        raise FileError("dest %s exists and is not a directory. Fix: point dest at a directory "
                        "(it is created if missing)." % path)
    if module.check_mode:
        return True
    try:
        os.makedirs(path, mode)
    except OSError as exc:
        raise FileError("dest %s cannot be created (%s). Fix: choose a writable directory or run with "
                        "become." % (path, os.strerror(exc.errno) if exc.errno else exc))
    return True


def check_writable(path):
    """Try to create (and remove) a temporary file in directory path."""
    probe = None
    try:
        fd, probe = tempfile.mkstemp(prefix=".dms-probe-", dir=path)
        os.close(fd)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno in (errno.ENOTDIR, errno.ENOENT):
            reason = "not a directory" if exc.errno == errno.ENOTDIR else "no such directory"
        raise FileError("dest %s is not writable (%s). Fix: choose a writable directory, fix its "
                        "permissions, or run with become." % (path, reason))
    finally:
        if probe:
            os.unlink(probe)


def write_file(module, path, content, mode=0o600, owner=None, group=None, backup=False):
    result = {"changed": True, "backup_file": None}
    if module.check_mode:
        return result
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dms-", dir=directory)
    except OSError as exc:
        raise FileError("Cannot create a file in %s (%s). Fix: choose a writable directory or run "
                        "with become." % (directory, os.strerror(exc.errno) if exc.errno else exc))
    module.add_cleanup_file(tmp)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise FileError("Writing %s failed (%s). Fix: check free space and permissions of %s."
                        % (path, os.strerror(exc.errno) if exc.errno else exc, directory))
    if backup and os.path.exists(path):
        result["backup_file"] = module.backup_local(path)
    # atomic_move gives a *new* destination 0666 & ~umask; a tight umask keeps a new key file
    # 0600 until set_fs_attributes_if_different applies the wanted mode.
    old_umask = os.umask(0o077)
    try:
        module.atomic_move(tmp, os.path.abspath(path))
    finally:
        os.umask(old_umask)
    fsync_directory(directory)
    module.set_fs_attributes_if_different(_file_args(path, mode, owner, group), False)
    return result


def fsync_directory(directory):
    """Flush the directory entry: a file's own fsync does not make its rename (or removal) durable,
    so after a power cut the directory could still show the old file, or none."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise FileError("Cannot open %s to flush it (%s). Fix: check its permissions."
                        % (directory, os.strerror(exc.errno) if exc.errno else exc))
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems cannot fsync a directory; they then give no such guarantee anyway.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise FileError("Flushing %s failed (%s). Fix: check the file system (free space, errors)."
                            % (directory, os.strerror(exc.errno) if exc.errno else exc))
    finally:
        os.close(fd)


def set_attributes(module, path, mode=None, owner=None, group=None):
    return module.set_fs_attributes_if_different(_file_args(path, mode, owner, group), False)


def remove_file(module, path, backup=False):
    result = {"changed": False, "backup_file": None}
    if not os.path.lexists(path):
        return result
    result["changed"] = True
    if module.check_mode:
        return result
    if backup:
        result["backup_file"] = module.backup_local(path)
    try:
        os.unlink(path)
    except OSError as exc:
        raise FileError("Cannot remove %s (%s). Fix: fix the permissions of its directory or run "
                        "with become." % (path, os.strerror(exc.errno) if exc.errno else exc))
    fsync_directory(os.path.dirname(os.path.abspath(path)))
    return result

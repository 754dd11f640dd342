# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Logging on to the certificate portal without risking the account.  Knows no Ansible.

Owns: the logon strategy (at most two attempts per run, none on a locked account, the initial password
only on a never-used one), the first-logon lock that serialises the password change of one account among
the runs on this host (a file in a private directory of the user), the whoami check (the portal must name
the presented certificate, or no password goes out), and the re-logon when a session expires during a
long wait.

``Account(client, user_id, account_state, password)``
    ``log_on()`` -> True when it changed the initial password; ``call(method, *args)`` calls a bound
    ``PortalClient`` method, logging on again once when the session expired; ``logins`` counts logons.
``first_logon_lock(base_url, user_id, timeout=..., directory=None)``: the lock (a context manager).
``LogonFailed`` (a ``DmsError``): the message names the cause and the fix, never a password.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
import time

try:
    import fcntl
    HAS_FCNTL = True
except ImportError:  # pragma: no cover - not POSIX
    HAS_FCNTL = False

from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_client as portal
from ansible_collections.dkcustoms.dms.plugins.module_utils._errors import DmsError

# How long a run waits for another run on this host to finish the first logon of the same account.
FIRST_LOGON_LOCK_TIMEOUT = 300
LOCK_POLL_INTERVAL = 0.2


class LogonFailed(DmsError):
    """No logon, or a refused one: the run ends here (the message names the fix)."""

    reason = "logon_failed"


def locked(user_id):
    return LogonFailed(portal.locked_message(user_id), reason="account_locked")


def lock_directory():
    """This user's private directory for first-logon locks (not the shared temp directory itself,
    where another local user could plant a symlink or hold a lock of the same name)."""
    return os.path.join(tempfile.gettempdir(), "dkcustoms-dms-%d" % os.geteuid())


def _os_reason(exc):
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _private_directory(path):
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise LogonFailed("The lock directory %s cannot be created (%s). Nothing was sent. Fix: make the "
                          "temporary directory writable for this user." % (path, _os_reason(exc))) from None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise LogonFailed(
            "The lock directory %s is not a private directory of this user (it must be a directory, not "
            "a link, owned by uid %d, mode 0700). Nothing was sent. Fix: remove it - another user may "
            "have made it to interfere - and run again." % (path, os.geteuid()))
    return path


def _open_lock_file(path):
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LogonFailed("The lock file %s is a symbolic link; it was not followed. Nothing was sent. "
                              "Fix: remove the link and run again." % path) from None
        raise LogonFailed("The lock file %s cannot be opened (%s). Nothing was sent. Fix: check the "
                          "permissions of %s." % (path, _os_reason(exc), os.path.dirname(path))) from None


def _acquire(fd, path, user_id, timeout):
    """Take the lock on ``fd``, waiting at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LogonFailed(
                    "Another run on this host has held the first-logon lock of %s for more than %d seconds; "
                    "no logon was attempted. Fix: let the other portal_registration run finish (or stop it: "
                    "fuser %s names it), then run again." % (user_id, timeout, path),
                    reason="lock_timeout") from None
            time.sleep(LOCK_POLL_INTERVAL)


@contextlib.contextmanager
def first_logon_lock(base_url, user_id, timeout=FIRST_LOGON_LOCK_TIMEOUT, directory=None):
    """Serialise the first logon + password change of one account among the runs on this host.

    Twenty runs for one never-used certificate would otherwise all log on with the initial password
    and all but one would fail the password change - each failure counts towards the lockout.
    The lock is a file in this user's private directory, opened without following links, and the
    wait for it ends after ``timeout`` seconds with an error instead of hanging the run.
    """
    if not HAS_FCNTL:
        yield
        return
    folder = _private_directory(directory or lock_directory())
    digest = hashlib.sha256(("%s|%s" % (base_url, user_id)).encode("utf-8")).hexdigest()[:24]
    path = os.path.join(folder, "portal-%s.lock" % digest)
    fd = _open_lock_file(path)
    try:
        _acquire(fd, path, user_id, timeout)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Account:
    """The logon of one run to one portal account (at most two attempts)."""

    def __init__(self, client, user_id, account_state, password):
        self.client = client
        self.user_id = user_id
        self.account_state = account_state
        self._password = password
        self._working_password = None
        self.logins = 0

    def who_am_i(self):
        """The portal's whoami, trusted only for the certificate this run presents: a portal that
        names another user must not get a logon (it would get that user's password)."""
        whoami = self.client.whoami()
        if whoami["user_id"] != self.user_id:
            raise LogonFailed("The portal now names the certificate %s, before %s. No logon was attempted. "
                              "Fix: check portal_url." % (whoami["user_id"], self.user_id),
                              reason="certificate_mismatch")
        return whoami

    def log_on(self):
        """Log on; True when this run changed the initial password (the account was never used)."""
        if self.account_state == "new":
            with first_logon_lock(self.client.base_url, self.user_id):
                # Another run on this host may have done the first logon while we waited.
                self.account_state = self.who_am_i()["account_state"]
                if self.account_state == "new":
                    return self._first_logon()
                if self.account_state == "locked":
                    raise locked(self.user_id)
        self._logon_with(self._password)
        return False

    def _login(self, password):
        self.logins += 1
        return self.client.login(self.user_id, password)

    def _first_logon(self):
        """Initial password (the user id), then change it.  A never-used account cannot have been
        given the password yet, so trying it first would only spend a failed attempt."""
        try:
            self._login(self.user_id)
        except portal.InvalidCredentials:
            # Used in the meantime (another host changed the password): second and last attempt.
            self._logon_with(self._password)
            return False
        except portal.AccountLocked:
            raise locked(self.user_id) from None
        try:
            self.client.change_password(self.user_id, self._password)
        except portal.InvalidCredentials:
            # Another host changed it between our logon and our change.
            self.client.logout()
            self._logon_with(self._password)
            return False
        except portal.ValidationFailed as exc:
            raise LogonFailed("The portal refused password as the new password (%s). The account is still new "
                              "and nothing else was changed. Fix: choose a portal password the portal accepts."
                              % exc, reason="weak_password") from None
        self._logged_on(self._password)
        return True

    def _logon_with(self, password):
        """Log on with ``password``; a refusal or a lockout ends the run with the fix."""
        try:
            self._login(password)
        except portal.InvalidCredentials as exc:
            raise self._refused(exc) from None
        except portal.AccountLocked:
            raise locked(self.user_id) from None
        self._logged_on(password)

    def _logged_on(self, password):
        self.account_state = "active"
        self._working_password = password

    def _refused(self, exc):
        remaining = exc.attempts_remaining
        return LogonFailed(
            "The portal refused the password for %s%s. No further logon was attempted. Fix: set password to "
            "the account's current portal password (a person can reset it on the portal); more wrong attempts "
            "lock the account." % (self.user_id, "" if remaining is None else
                                   " (%s attempts left before the account locks)" % remaining),
            reason="invalid_credentials")

    def call(self, method, *args):
        """``method(*args)`` (a bound ``PortalClient`` method).  Sessions expire after 15 minutes; a long
        wait logs on again with the password that worked in this run (no risk of a failed attempt)."""
        try:
            return method(*args)
        except portal.SessionExpired:
            self._login(self._working_password)
            return method(*args)

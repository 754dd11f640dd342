# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_files.write_file: key material is 0600 from its first byte, and the rename is made durable by an
fsync of the directory (security review, issue 10, item 15)."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _files


class RecordingModule:
    """What write_file needs of AnsibleModule; records the order of what happens to the disk."""

    check_mode = False

    def __init__(self, events):
        self.events = events
        self.cleanup = []

    def add_cleanup_file(self, path):
        self.cleanup.append(path)

    def atomic_move(self, src, dest):
        # The temporary file holds every byte already; nobody but the owner could ever read it.
        self.events.append(("rename", dest, stat.S_IMODE(os.stat(src).st_mode)))
        os.rename(src, dest)

    def set_fs_attributes_if_different(self, file_args, changed):
        self.events.append(("attributes", file_args["path"]))
        if file_args["mode"] is not None:
            os.chmod(file_args["path"], file_args["mode"])
        return changed

    def backup_local(self, path):  # pragma: no cover - not used here
        raise AssertionError("no backup asked for")


@pytest.fixture
def events(monkeypatch):
    recorded = []
    real_fsync = os.fsync

    def fsync(fd):
        target = os.readlink("/proc/self/fd/%d" % fd)
        recorded.append(("fsync", target, stat.S_ISDIR(os.fstat(fd).st_mode)))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return recorded


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name file descriptors")
def test_write_file_fsyncs_the_directory_after_the_rename(tmp_path, events):
    path = str(tmp_path / "gateway-credentials.json")
    _files.write_file(RecordingModule(events), path, b'{"secret": true}', mode=0o600)

    renames = [n for n, event in enumerate(events) if event[0] == "rename"]
    directory_syncs = [n for n, event in enumerate(events)
                       if event[0] == "fsync" and event[2] and event[1] == str(tmp_path)]
    assert len(renames) == 1
    assert directory_syncs and directory_syncs[0] > renames[0], events
    file_syncs = [n for n, event in enumerate(events) if event[0] == "fsync" and not event[2]]
    assert file_syncs and file_syncs[0] < renames[0]  # the content first, then the name


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name file descriptors")
def test_remove_file_fsyncs_the_directory(tmp_path, events):
    path = tmp_path / "old.json"
    path.write_bytes(b"{}")
    module = RecordingModule(events)
    assert _files.remove_file(module, str(path))["changed"]
    assert ("fsync", str(tmp_path), True) in events and not path.exists()


def test_new_key_file_is_0600_from_its_first_byte_even_with_a_loose_umask(tmp_path, events):
    old = os.umask(0)
    try:
        module = RecordingModule(events)
        path = str(tmp_path / "key.pem")
        _files.write_file(module, path, b"-----BEGIN PRIVATE KEY-----", mode=0o600)
    finally:
        os.umask(old)
    (rename,) = [event for event in events if event[0] == "rename"]
    assert rename[2] == 0o600
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

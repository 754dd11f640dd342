# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One base for every error the collection reports, and the one way a module fails with it.

Owns: ``DmsError`` (a message that names the problem and the fix, never a secret, plus a short
machine-readable ``reason``) and ``fail``, which turns it into ``fail_json``.
Knows Ansible: only ``fail`` (it calls ``module.fail_json``); the errors themselves are plain Python, so
module_utils raise them without a module at hand and the unit tests catch them by class.
"""

from __future__ import annotations


class DmsError(Exception):
    """A failure the user can act on: ``msg`` says what is wrong and ``Fix: ...`` what to do.

    ``reason`` is a stable word for playbooks (``failed_when: result.reason == 'expired'``); a subclass
    sets its default, an instance may narrow it.  ``details`` are extra, secret-free result keys.
    """

    reason = "error"

    def __init__(self, msg, reason=None, **details):
        super().__init__(msg)
        self.msg = msg
        if reason is not None:
            self.reason = reason
        self.details = details


def fail(module, exc, **result):
    """Fail the module with ``exc``'s message and reason (and any extra, secret-free result keys)."""
    values = dict(exc.details)
    values.update(result)
    module.fail_json(msg=exc.msg, reason=exc.reason, **values)

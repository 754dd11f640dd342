# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The attribute descriptions every dkcustoms.dms module shares; modules state only their support."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode),
      when in diff mode.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second
      invocation indicates no change.
  action_group:
    description: Use C(group/dkcustoms.dms.dms) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - dkcustoms.dms.dms
"""

    FILES = r"""
attributes:
  safe_file_operations:
    description: Uses Ansible's strict file operation functions to ensure proper permissions and avoid
      data corruption.
    support: full
    details: Every file is written through one temporary file created with mode C(0600) in the target
      directory, then renamed over the destination.
"""

# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module base: an argument spec composed from option groups, and errors turned into ``fail_json``.

Owns: ``OptionGroup`` (options plus their mutually-exclusive / required-together / required-one-of / required-if
rules, shared by every module that takes them, documented by the doc fragment of the same name) and
``DmsModule``, an ``AnsibleModule`` built from a module's own options and the groups it uses.
Knows Ansible: yes.
"""

from __future__ import annotations

import contextlib
import copy

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dkcustoms.dms.plugins.module_utils._errors import DmsError, fail

_RULES = ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")


class OptionGroup:
    """Options that travel together (the certificate source, the connection), with their rules."""

    def __init__(self, name, options, **rules):
        unknown = set(rules) - set(_RULES)
        if unknown:
            raise ValueError("unknown option rule(s) %s for group %s" % (sorted(unknown), name))
        self.name = name
        self.options = options
        self.rules = rules

    def argument_spec(self):
        return copy.deepcopy(self.options)


def compose(argument_spec, groups=(), **rules):
    """The keyword arguments of ``AnsibleModule`` for a module's own options plus ``groups``."""
    spec = dict(argument_spec)
    merged = {rule: list(rules.get(rule) or ()) for rule in _RULES if rule != "required_by"}
    required_by = dict(rules.get("required_by") or {})
    for group in groups:
        clash = set(spec) & set(group.options)
        if clash:
            raise ValueError("option(s) %s defined twice (group %s)" % (sorted(clash), group.name))
        spec.update(group.argument_spec())
        for rule, value in group.rules.items():
            if rule == "required_by":
                required_by.update(value)
            else:
                merged[rule].extend(value)
    kwargs = {rule: value for rule, value in merged.items() if value}
    if required_by:
        kwargs["required_by"] = required_by
    kwargs["argument_spec"] = spec
    return kwargs


class DmsModule(AnsibleModule):
    """``AnsibleModule`` whose argument spec is the module's options plus its option groups."""

    def __init__(self, argument_spec, groups=(), supports_check_mode=True, **rules):
        kwargs = compose(argument_spec, groups, **rules)
        super().__init__(supports_check_mode=supports_check_mode, **kwargs)

    @contextlib.contextmanager
    def failing_on_errors(self, **result):
        """Turn a ``DmsError`` raised inside the block into ``fail_json`` (with ``result``'s keys)."""
        try:
            yield
        except DmsError as exc:
            fail(self, exc, **result)

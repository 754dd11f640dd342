# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The third-party Python libraries the modules need, and the one message when one is missing.

Owns: the import check of cryptography, requests, lxml, signxml and jmespath on the managed host, and the
message naming the fix (the role ``dkcustoms.dms.prerequisites``, or the packages to install).
Knows Ansible: yes (``require`` fails the module with ``fail_json``; no traceback, ever).
The floors are those of ``meta/ee-requirements.txt`` (a test keeps the two equal).
"""

from __future__ import annotations

import importlib
import sys

# library -> (what to import to prove it works, pip requirement with the collection's floor)
LIBRARIES = {
    "cryptography": (("cryptography.x509", "cryptography.hazmat.primitives.serialization.pkcs12"),
                     "cryptography>=45.0"),
    "requests": (("requests",), "requests>=2.32.4"),
    "lxml": (("lxml.etree",), "lxml>=5.4"),
    "signxml": (("signxml",), "signxml>=4.0"),
    "jmespath": (("jmespath",), "jmespath>=1.0"),
}
# library -> (module, attribute path) that exists only from the floor on: a library that imports but
# lacks it is too old, and counts as missing (requests < 2.32.2 has no adapter hook for the SSL context,
# so ca_path and the client certificate would be ignored without a word).
FEATURES = {
    "requests": ("requests.adapters", "HTTPAdapter.build_connection_pool_key_attributes"),
}
ROLE = "dkcustoms.dms.prerequisites"


def too_old(name):
    """True when ``name`` imports but lacks the feature its floor brings (see FEATURES)."""
    if name not in FEATURES:
        return False
    module_name, attribute_path = FEATURES[name]
    target = importlib.import_module(module_name)
    for attribute in attribute_path.split("."):
        target = getattr(target, attribute, None)
        if target is None:
            return True
    return False


def missing(names):
    """``[(library, import error text)]`` for each library in ``names`` that does not import."""
    absent = []
    for name in names:
        for module_name in LIBRARIES[name][0]:
            try:
                importlib.import_module(module_name)
            except ImportError as exc:  # a broken install (e.g. no compiled binding) counts as missing
                absent.append((name, str(exc)))
                break
        else:
            if too_old(name):
                absent.append((name, "installed, but older than %s" % LIBRARIES[name][1]))
    return absent


def missing_message(absent, interpreter=None):
    """The failure text for ``missing()``'s answer: what is missing, where, and the fix."""
    interpreter = interpreter or sys.executable
    requirements = " ".join("'%s'" % LIBRARIES[name][1] for name, dummy in absent)
    return ("Missing Python %s on the managed host for the interpreter %s: %s. "
            "Fix: run the role %s on this host (it installs them and sets the interpreter the "
            "dkcustoms.dms tasks use), or install them for that interpreter: %s -m pip install %s."
            % ("library" if len(absent) == 1 else "libraries", interpreter,
               "; ".join("%s (%s)" % item for item in absent), ROLE, interpreter, requirements))


def require(module, *names):
    """Fail ``module`` with the message above unless every library in ``names`` imports."""
    absent = missing(names)
    if absent:
        module.fail_json(msg=missing_message(absent), reason="missing_library",
                         missing_libraries=[name for name, dummy in absent])

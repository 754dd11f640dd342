# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Does this Python have the dkcustoms.dms modules' libraries at their floors?

Run by the role dkcustoms.dms.prerequisites with the interpreter to check:
``python check_libraries.py '{"cryptography": "45.0", ...}'``. Prints one JSON object:
``{"python": <executable>, "version": "3.11", "problems": ["lxml: not installed (...)", ...]}``.
Standard library only, Python 3.6 and later (a distribution's own python3 may be old).
"""

import importlib
import json
import re
import sys

# What importing proves that a library works (the modules' module_utils/_deps.py imports the same).
IMPORTS = {
    "cryptography": ["cryptography.x509", "cryptography.hazmat.primitives.serialization.pkcs12"],
    "requests": ["requests"],
    "lxml": ["lxml.etree"],
    "signxml": ["signxml"],
    "jmespath": ["jmespath"],
}


def release(text):
    """The leading numbers of a version: '38.0.4' -> (38, 0, 4)."""
    return tuple(int(part) for part in re.findall(r"\d+", re.match(r"[\d.]*", text).group(0)))


def installed_version(name):
    try:
        from importlib import metadata
        return metadata.version(name)
    except ImportError:  # Python < 3.8
        import pkg_resources
        return pkg_resources.get_distribution(name).version


def problems(floors):
    found = []
    for name in sorted(floors):
        try:
            for module_name in IMPORTS[name]:
                importlib.import_module(module_name)
            version = installed_version(name)
        except Exception as exc:  # pylint: disable=broad-except
            # Any failure while importing means "not usable", whatever its type.
            found.append("%s: not installed or broken (%s)" % (name, exc))
            continue
        if release(version) < release(floors[name]):
            found.append("%s: %s is older than the floor %s" % (name, version, floors[name]))
    return found


def main():
    floors = json.loads(sys.argv[1])
    print(json.dumps({"python": sys.executable, "version": "%d.%d" % sys.version_info[:2],
                      "problems": problems(floors)}))


if __name__ == "__main__":
    main()

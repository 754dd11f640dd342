#!/usr/bin/env python3
"""Print the skips of one pytest suite, read from its JUnit XML report; under CI (CI=true) fail on any
skip that the table "Skips allowed under CI" in tests/README.md does not list.

    .ci/check-skips.py SUITE REPORT.xml

The Makefile runs it after each pytest suite. It reads pytest's own report, so it also sees skips that
bypass tests/conftest.py (a bare pytest.skip, skipif, importorskip).
"""

import fnmatch
import os
import sys
import xml.etree.ElementTree as ElementTree

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests", "README.md")
HEADING = "## Skips allowed under CI"


def under_ci():
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def allowed_patterns(readme=README):
    """First-column patterns (fnmatch, on `module.test`) of the rows of the table under HEADING."""
    patterns, in_section, in_rows = [], False, False
    with open(readme, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("## "):
                in_section, in_rows = line.strip() == HEADING, False
                continue
            if not in_section or not line.startswith("|"):
                continue
            first = line.strip().strip("|").split("|")[0].strip()
            if set(first) <= set("-: "):  # the separator: the rows follow it
                in_rows = True
            elif in_rows:
                patterns.append(first.strip("`"))
    return patterns


def skips(report):
    """(test id, reason) of every skipped (or xfailed) test case in a JUnit XML report."""
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        skipped = case.find("skipped")
        if skipped is not None:
            yield "%s.%s" % (case.get("classname"), case.get("name")), skipped.get("message", "")


def main(suite, report):
    total = sum(1 for _ in ElementTree.parse(report).getroot().iter("testcase"))
    found = list(skips(report))
    patterns = allowed_patterns()
    refused = []
    print("%s: %d tests, %d skipped" % (suite, total, len(found)))
    for test_id, reason in found:
        allowed = any(fnmatch.fnmatchcase(test_id, pattern) for pattern in patterns)
        print("  skipped %s: %s%s" % (test_id, reason, "" if allowed else " (not on the list in tests/README.md)"))
        if not allowed:
            refused.append(test_id)
    if refused and under_ci():
        print("%s: %d skip(s) not allowed under CI; make the test run, or list it with its reason under "
              "\"%s\" in tests/README.md" % (suite, len(refused), HEADING[3:]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))

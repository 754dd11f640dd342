# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Portal user ids (``CVR_<8 digits>_UI_<36-character UUID>``).  Knows no Ansible.

API (private to this collection, stable for its modules and filters):

``IdentityError(ValueError)``
    Raised with a message that says what is wrong and how to fix it.
``validate_cvr(cvr) -> str`` / ``validate_uuid(uuid) -> str``
    Normalised values (CVR as 8-digit text, UUID lower case) or ``IdentityError``.
``build_portal_user_id(cvr, uuid, kind="UI") -> str``
    ``CVR_<cvr>_UI_<uuid>``; ``kind="UR"`` builds the form the guide's screenshot shows.
``parse_portal_user_id(value) -> dict``
    ``{"cvr", "uuid", "kind", "portal_user_id"}`` where ``portal_user_id`` is the canonical ``UI``
    form; accepts ``UI`` and ``UR`` (see domain.md: ``UR`` is most likely a slip, but accepted).
"""

from __future__ import annotations

import re

KINDS = ("UI", "UR")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_USER_ID = re.compile(r"^CVR_(?P<cvr>[^_]*)_(?P<kind>[A-Za-z]+)_(?P<rest>.*)$")


class IdentityError(ValueError):
    """A malformed CVR, UUID or portal user id; the message says what is wrong and the fix."""


def validate_cvr(cvr):
    """Return the CVR as 8-digit text or raise IdentityError."""
    if isinstance(cvr, bool) or cvr is None:
        raise IdentityError("CVR is missing. Fix: give the company's 8-digit CVR number.")
    text = str(cvr).strip()
    if not text.isdigit():
        raise IdentityError("CVR %r is not a number: a CVR is exactly 8 digits. Fix: give the 8-digit "
                            "CVR number without spaces or the 'DK' prefix." % text)
    if len(text) != 8:
        raise IdentityError("CVR %r has %d digits; a CVR is exactly 8 digits. Fix: give the full 8-digit "
                            "CVR number (as a quoted string if it could lose digits)."
                            % (text, len(text)))
    return text


def validate_uuid(uuid):
    """Return the UUID in lower case or raise IdentityError."""
    if uuid is None:
        raise IdentityError("UUID is missing. Fix: give the certificate's 36-character UUID "
                            "(the UI in the subject serialNumber UI:DK-O:G:<uuid>).")
    text = str(uuid).strip().lower()
    if len(text) != 36:
        raise IdentityError("UUID %r has %d characters; the certificate UUID is exactly 36 characters "
                            "(8-4-4-4-12 hex digits with dashes). Fix: copy the full UUID from the "
                            "certificate's serialNumber." % (text, len(text)))
    if not _UUID.match(text):
        raise IdentityError("UUID %r is not in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits "
                            "and dashes). Fix: copy the UUID from the certificate's serialNumber."
                            % text)
    return text


def build_portal_user_id(cvr, uuid, kind="UI"):
    """CVR_<cvr>_UI_<uuid> (or _UR_ with kind='UR')."""
    if kind not in KINDS:
        raise IdentityError("kind %r is not one of %s. Fix: use 'UI' (the portal user id form)."
                            % (kind, ", ".join(KINDS)))
    return "CVR_%s_%s_%s" % (validate_cvr(cvr), kind, validate_uuid(uuid))


def parse_portal_user_id(value):
    """Split a portal user id / gateway user into cvr, uuid and kind."""
    if not isinstance(value, str):
        raise IdentityError("A portal user id must be text like CVR_12345678_UI_<uuid>, got %s. Fix: "
                            "pass the user id string." % type(value).__name__)
    text = value.strip()
    match = _USER_ID.match(text)
    if not match:
        if re.match(r"^U[IR]_", text):
            raise IdentityError("%r is an account id without the CVR part. Fix: use the full user id "
                                "CVR_<cvr>_UI_<uuid> (the portal shows it as the gateway user)." % text)
        raise IdentityError("%r is not a portal user id; the form is CVR_<8 digits>_UI_<36-character "
                            "UUID>. Fix: copy the user id the portal shows." % text)
    kind = match.group("kind").upper()
    if kind in ("UID", "RID", "FID"):
        raise IdentityError("%r is an OCES2 user id (CVR_<cvr>_%s_<n>); OCES3 ids are CVR_<cvr>_UI_<uuid>. "
                            "Fix: use the OCES3 certificate's user id." % (text, kind))
    if kind not in KINDS:
        raise IdentityError("%r has the kind %r; expected UI (or UR). Fix: use the form "
                            "CVR_<8 digits>_UI_<uuid>." % (text, match.group("kind")))
    cvr = validate_cvr(match.group("cvr"))
    uuid = validate_uuid(match.group("rest"))
    return {"cvr": cvr, "uuid": uuid, "kind": kind,
            "portal_user_id": build_portal_user_id(cvr, uuid)}

"""The one Python client of the sandbox's admin API (docs/sandbox.md): tests, the demo and the benchmark
call it through here, so only this file knows how the admin API is reached and authenticated.

    admin = AdminClient(info)              # info: sandbox.json as a dict, its path, or the state directory
    admin.request("GET", "/counters")      # -> requests.Response, whatever its status
    admin.call("POST", "/faults", {...})   # -> the JSON answer; raises for a non-2xx status
    admin.counters(); admin.set_faults("portal", error_rate=0.2)

Playbooks send the same header themselves: `Authorization: Bearer {{ sandbox.admin_token }}`.
"""

import json
import os

import requests

READY_FILE = "sandbox.json"


def load_info(source):
    """sandbox.json as a dict, from a dict, the file's path or the state directory holding it."""
    if isinstance(source, dict):
        return source
    path = os.path.join(source, READY_FILE) if os.path.isdir(source) else source
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def admin_headers(info):
    """The header every admin call needs."""
    return {"Authorization": "Bearer %s" % load_info(info)["admin_token"]}


class AdminClient:
    """Calls of one sandbox's admin API."""

    def __init__(self, info, timeout=30):
        self.info = load_info(info)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment between us and loopback
        self.session.headers.update(admin_headers(self.info))

    def request(self, method, path, body=None, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        if body is not None:
            kwargs["json"] = body
        return self.session.request(method, self.info["admin_url"] + path, **kwargs)

    def call(self, method, path, body=None):
        answer = self.request(method, path, body)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def counters(self):
        return self.call("GET", "/counters")

    def set_faults(self, service=None, **faults):
        """set_faults("portal", error_rate=0.2), or set_faults(portal={...}, gateway={...})."""
        return self.call("POST", "/faults", dict(faults, service=service) if service else faults)

    def close(self):
        self.session.close()

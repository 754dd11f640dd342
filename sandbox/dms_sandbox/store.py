"""All sandbox state in one SQLite file (`--state DIR/sandbox.db`).

Why SQLite: a restart (even after SIGKILL) must lose nothing, and many concurrent requests must be
serialised. The database runs in WAL mode; every state change is one `BEGIN IMMEDIATE` transaction
(`Store.write()`), so "check, then change" cannot interleave: 50 simultaneous "register" calls see
one `not_registered` and 49 `in_progress`.

Registration completes lazily: a request stores `completes_at`; whoever reads the account after that
moment (portal, gateway, counters) turns `in_progress` into `registered` in a write transaction. No
timer thread is needed, so a sandbox killed mid-registration and started again still completes it.
"""

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import string
import threading
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    user_id TEXT PRIMARY KEY,
    cvr TEXT NOT NULL,
    uuid TEXT NOT NULL,
    common_name TEXT,
    expiry_date TEXT,
    certificate_der BLOB,
    state TEXT NOT NULL DEFAULT 'new',          -- new | active | locked
    state_before_lock TEXT,
    password_hash TEXT,                          -- NULL while new: the password is the user id
    failed_in_row INTEGER NOT NULL DEFAULT 0,
    registration_status TEXT NOT NULL DEFAULT 'not_registered',
    requested_at REAL,
    completes_at REAL,
    registered_at REAL,
    registered_certificate_der BLOB,
    gateway_user TEXT UNIQUE,
    gateway_password TEXT,
    se_number TEXT,
    email TEXT,
    interfaces TEXT NOT NULL DEFAULT '[]',
    logins_ok INTEGER NOT NULL DEFAULT 0,
    logins_failed INTEGER NOT NULL DEFAULT 0,
    registrations_requested INTEGER NOT NULL DEFAULT 0,
    writes INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    certificate_sha256 TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, used_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mpc (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    gateway_user TEXT NOT NULL,
    mpc TEXT NOT NULL,
    message BLOB NOT NULL,
    queued_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS mpc_queue ON mpc (gateway_user, mpc, id);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cvr TEXT NOT NULL,
    service TEXT,                                -- NULL: listed for every service
    document TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_cvr ON notifications (cvr, created_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

MAX_FAILED_LOGONS = 5
GATEWAY_USER_FORMS = ("UI", "UR")
_PASSWORD_ALPHABET = string.ascii_letters + string.digits
_PBKDF2_ROUNDS = 60000


def hash_password(password):
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, _PBKDF2_ROUNDS)
    return "pbkdf2-sha256$%d$%s$%s" % (_PBKDF2_ROUNDS, salt.hex(), digest.hex())


def check_password(password, stored):
    _scheme, rounds, salt, digest = stored.split("$")
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(salt), int(rounds))
    return hmac.compare_digest(candidate.hex(), digest)


def token_hash(token):
    """Sessions are stored by hash so the database never holds a usable token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_gateway_password():
    # 20 characters with at least one digit, upper and lower case letter, as generated passwords tend to be.
    while True:
        password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(20))
        if any(c.isdigit() for c in password) and any(c.isupper() for c in password) \
                and any(c.islower() for c in password):
            return password


class Store:
    """The sandbox's state. One SQLite connection per thread; `write()` for every change."""

    def __init__(self, path, gateway_user_form="UI"):
        if gateway_user_form not in GATEWAY_USER_FORMS:
            raise ValueError("gateway_user_form must be UI or UR, not %r" % gateway_user_form)
        self.path = path
        self.gateway_user_form = gateway_user_form
        # Set by the service to the portal fault "registration_stuck": while it answers True nothing completes.
        self.registrations_held = lambda: False
        self._local = threading.local()
        self._connections = []
        self._connections_lock = threading.Lock()
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        # State directories made before pulled messages carried the id of the message they answer.
        if "original_message_id" not in [row[1] for row in conn.execute("PRAGMA table_info(mpc)")]:
            conn.execute("ALTER TABLE mpc ADD COLUMN original_message_id TEXT")

    # -- connections and transactions ------------------------------------------------------------------
    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=60000")
            # WAL + NORMAL survives a killed process (only a power cut may lose the last commits).
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def write(self):
        """One serialised read-modify-write transaction (BEGIN IMMEDIATE takes the write lock up front)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def read(self):
        """A consistent snapshot for reading several rows."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def release_thread(self):
        """Close this thread's connection (each HTTP connection gets its own thread, so this runs a lot)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._connections_lock:
            if conn in self._connections:
                self._connections.remove(conn)
        conn.close()

    def close(self):
        with self._connections_lock:
            for conn in self._connections:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._connections = []
        self._local = threading.local()

    # -- meta ------------------------------------------------------------------------------------------
    def meta_get(self, key, default=None):
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else default

    def meta_set(self, key, value):
        with self.write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # -- registration completion -------------------------------------------------------------------------
    def settle(self):
        """Complete every registration whose time has come (unless registrations are held)."""
        if self.registrations_held():
            return
        now = time.time()
        due = self._conn().execute(
            "SELECT 1 FROM accounts WHERE registration_status = 'in_progress' AND completes_at <= ? LIMIT 1",
            (now,)).fetchone()
        if due is None:
            return
        with self.write() as conn:
            self.settle_in(conn, now)

    def settle_in(self, conn, now=None):
        """settle() inside a write transaction the caller holds."""
        if self.registrations_held():
            return
        now = time.time() if now is None else now
        rows = conn.execute("SELECT user_id FROM accounts WHERE registration_status = 'in_progress' "
                            "AND completes_at <= ?", (now,)).fetchall()
        for row in rows:
            conn.execute("UPDATE accounts SET registration_status = 'registered', registered_at = ?, "
                         "gateway_password = ? WHERE user_id = ?", (now, new_gateway_password(), row["user_id"]))

    # -- accounts ----------------------------------------------------------------------------------------
    def ensure_account(self, identity, certificate_der):
        """Create the account of a certificate the first time it is seen (not a write by the user)."""
        conn = self._conn()
        row = conn.execute("SELECT common_name, expiry_date, certificate_der FROM accounts WHERE user_id = ?",
                           (identity["user_id"],)).fetchone()
        if row is not None and row["certificate_der"] == certificate_der:
            return
        with self.write() as conn:
            conn.execute(
                "INSERT INTO accounts (user_id, cvr, uuid, common_name, expiry_date, certificate_der, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET common_name = excluded.common_name, "
                "expiry_date = excluded.expiry_date, certificate_der = excluded.certificate_der",
                (identity["user_id"], identity["cvr"], identity["uuid"], identity["common_name"],
                 identity["expiry_date"], certificate_der, time.time()))

    @staticmethod
    def account_in(conn, user_id):
        row = conn.execute("SELECT * FROM accounts WHERE user_id = ?", (user_id,)).fetchone()
        return _account_dict(row) if row else None

    def account(self, user_id):
        self.settle()
        with self.read() as conn:
            return self.account_in(conn, user_id)

    @staticmethod
    def update_account_in(conn, user_id, **fields):
        if "interfaces" in fields:
            fields["interfaces"] = json.dumps(fields["interfaces"])
        assignments = ", ".join("%s = ?" % name for name in fields)
        conn.execute("UPDATE accounts SET %s WHERE user_id = ?" % assignments, list(fields.values()) + [user_id])

    @staticmethod
    def bump_in(conn, user_id, *names):
        """Add one to per-account counters (logins_ok, logins_failed, registrations_requested, writes)."""
        assignments = ", ".join("%s = %s + 1" % (name, name) for name in names)
        conn.execute("UPDATE accounts SET %s WHERE user_id = ?" % assignments, (user_id,))

    def gateway_user_for(self, cvr, uuid):
        return "CVR_%s_%s_%s" % (cvr, self.gateway_user_form, uuid)

    def unlock(self, user_id):
        """A person lifts a lockout (admin API). Returns the account, or None if there is none."""
        with self.write() as conn:
            account = self.account_in(conn, user_id)
            if account is None:
                return None
            if account["state"] == "locked":
                self.update_account_in(conn, user_id, state=account["state_before_lock"] or "active",
                                       state_before_lock=None, failed_in_row=0)
            else:
                self.update_account_in(conn, user_id, failed_in_row=0)
            return self.account_in(conn, user_id)

    # -- sessions ----------------------------------------------------------------------------------------
    @staticmethod
    def create_session_in(conn, user_id, certificate_sha256, lifetime_s):
        token = secrets.token_urlsafe(32)
        now = time.time()
        conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now - 3600,))
        conn.execute("INSERT INTO sessions (token_hash, user_id, certificate_sha256, expires_at) VALUES (?, ?, ?, ?)",
                     (token_hash(token), user_id, certificate_sha256, now + lifetime_s))
        return token

    def session(self, token):
        row = self._conn().execute("SELECT * FROM sessions WHERE token_hash = ?", (token_hash(token),)).fetchone()
        return dict(row) if row else None

    def delete_session(self, token):
        with self.write() as conn:
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash(token),))

    # -- the gateway's side (interface used by gateway.Gateway) -----------------------------------------
    def gateway_account(self, gateway_user):
        """The gateway's view of a gateway user, or None when the portal never issued it."""
        self.settle()
        row = self._conn().execute("SELECT * FROM accounts WHERE gateway_user = ?", (gateway_user,)).fetchone()
        if row is None:
            return None
        account = _account_dict(row)
        registered = account["registration_status"] == "registered"
        return {
            "gateway_user": gateway_user,
            "portal_user_id": account["user_id"],
            "registered": registered,
            "interfaces": account["interfaces"],
            "gateway_password": account["gateway_password"] if registered else None,
            "certificate_der": account["registered_certificate_der"],
            "cvr": account["cvr"],
        }

    def use_nonce(self, nonce):
        """Record a UsernameToken nonce; False when it was used before (replay)."""
        with self.write() as conn:
            # Nonces older than the 5-minute Created window cannot be replayed anyway.
            conn.execute("DELETE FROM nonces WHERE used_at < ?", (time.time() - 3600,))
            cursor = conn.execute("INSERT OR IGNORE INTO nonces (nonce, used_at) VALUES (?, ?)", (nonce, time.time()))
            return cursor.rowcount == 1

    def count_gateway(self, result):
        """Count one gateway answer: "accepted" or an ebMS error code such as "EBMS:0101"."""
        self.count("gateway:" + result)

    def mpc_push(self, gateway_user, mpc, message, original_message_id=None):
        if isinstance(message, str):
            message = message.encode("utf-8")
        with self.write() as conn:
            conn.execute("INSERT INTO mpc (gateway_user, mpc, message, queued_at, original_message_id) "
                         "VALUES (?, ?, ?, ?, ?)", (gateway_user, mpc, message, time.time(), original_message_id))

    def mpc_pop(self, gateway_user, mpc):
        """(message bytes, id of the message it answers) of the oldest waiting message, or None."""
        with self.write() as conn:
            row = conn.execute("SELECT id, message, original_message_id FROM mpc WHERE gateway_user = ? AND mpc = ? "
                               "ORDER BY id LIMIT 1", (gateway_user, mpc)).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM mpc WHERE id = ?", (row["id"],))
            conn.execute("INSERT INTO counters (name, value) VALUES ('mpc:dequeued', 1) "
                         "ON CONFLICT (name) DO UPDATE SET value = value + 1")
            return bytes(row["message"]), row["original_message_id"]

    def mpc_count(self, gateway_user, mpc):
        row = self._conn().execute("SELECT COUNT(*) AS n FROM mpc WHERE gateway_user = ? AND mpc = ?",
                                   (gateway_user, mpc)).fetchone()
        return row["n"]

    def notification_add(self, cvr, document, service=None, at=None):
        """Store a notification for the company ``cvr``; returns its id."""
        with self.write() as conn:
            cursor = conn.execute("INSERT INTO notifications (cvr, service, document, created_at) VALUES (?, ?, ?, ?)",
                                  (cvr, service, document, time.time() if at is None else at))
            return cursor.lastrowid

    def notifications_between(self, cvr, service, start, end):
        """The notifications of ``cvr`` for ``service`` (or for every service) created in [start, end]."""
        rows = self._conn().execute(
            "SELECT id, service, document, created_at FROM notifications WHERE cvr = ? AND created_at BETWEEN ? AND ? "
            "AND (service IS NULL OR service = ?) ORDER BY id", (cvr, start, end, service)).fetchall()
        return [{"id": row["id"], "service": row["service"], "document": row["document"],
                 "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row["created_at"]))} for row in rows]

    # -- counters ----------------------------------------------------------------------------------------
    def count(self, name, amount=1):
        with self.write() as conn:
            conn.execute("INSERT INTO counters (name, value) VALUES (?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", (name, amount))

    def counters(self):
        """The admin API's GET /counters document."""
        self.settle()
        with self.read() as conn:
            plain = {row["name"]: row["value"] for row in conn.execute("SELECT name, value FROM counters")}
            accounts = {}
            for row in conn.execute("SELECT * FROM accounts ORDER BY user_id"):
                account = _account_dict(row)
                accounts[account["user_id"]] = {
                    "logins_ok": account["logins_ok"],
                    "logins_failed": account["logins_failed"],
                    "locked": account["state"] == "locked",
                    "account_state": account["state"],
                    "registration_status": account["registration_status"],
                    "registrations_requested": account["registrations_requested"],
                    "writes": account["writes"],
                    "gateway_user": account["gateway_user"],
                    "interfaces": account["interfaces"],
                }
            waiting = {}
            for row in conn.execute("SELECT gateway_user, mpc, COUNT(*) AS n FROM mpc GROUP BY gateway_user, mpc"):
                waiting.setdefault(row["gateway_user"], {})[row["mpc"]] = row["n"]
        rejected = {name[len("gateway:"):]: value for name, value in plain.items()
                    if name.startswith("gateway:") and name != "gateway:accepted"}
        by_service = {name[len("requests:"):]: value for name, value in plain.items() if name.startswith("requests:")}
        faults = {"portal": {}, "gateway": {}}  # injected answers: {service: {"rate_limited": n, "dropped": n, ...}}
        for name, value in plain.items():
            if name.startswith("faults:"):
                _prefix, service, kind = name.split(":", 2)
                faults.setdefault(service, {})[kind] = value
        return {
            "requests": sum(by_service.values()),
            "requests_by_service": by_service,
            "accounts": accounts,
            "faults": faults,
            "gateway": {
                "accepted": plain.get("gateway:accepted", 0),
                "rejected": rejected,
                "waiting": waiting,
                "dequeued": plain.get("mpc:dequeued", 0),
            },
        }

    def reset_counters(self):
        """Zero every counter (state such as accounts, registrations and queued messages stays)."""
        with self.write() as conn:
            conn.execute("DELETE FROM counters")
            conn.execute("UPDATE accounts SET logins_ok = 0, logins_failed = 0, registrations_requested = 0, "
                         "writes = 0")


def _account_dict(row):
    account = dict(row)
    account["interfaces"] = json.loads(account["interfaces"] or "[]")
    return account

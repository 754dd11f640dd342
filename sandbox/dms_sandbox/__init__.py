"""dms_sandbox: a test PKI, certificate portal and AS4 gateway shaped like the Danish DMS services."""

__version__ = "0.1.0"

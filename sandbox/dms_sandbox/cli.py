"""`dms-sandbox`: the test PKI (`pki`) and the portal + gateway service (`serve`, `stop`, `status`)."""

import argparse
import sys

from dms_sandbox import __version__, pki, service


def build_parser():
    parser = argparse.ArgumentParser(
        prog="dms-sandbox",
        description="Test PKI, certificate portal and AS4 gateway that behave like the Danish DMS services.")
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    pki.add_subcommand(subparsers)
    service.add_subcommands(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, OSError) as exc:
        print("dms-sandbox: error: %s" % exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

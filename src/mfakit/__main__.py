"""Command line: ``python -m mfakit demo`` and ``python -m mfakit generate-key``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from mfakit._demo import run_demo
from mfakit.hazmat.secretbox import Keyring

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mfakit", description="Multi-factor authentication toolkit."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="enrol your phone's authenticator app and sign in, in the terminal",
        description=(
            "A walk-through with your own phone: scan the QR code with Google or Microsoft "
            "Authenticator (or any TOTP app), confirm with a code, sign in with a fresh one "
            "and watch the same code being refused a second time. Reads answers from "
            "standard input, so it can be scripted."
        ),
    )
    demo.add_argument("--account", default="demo@example.com", help="account name in the app")
    demo.add_argument("--issuer", default="mfakit demo", help="issuer name in the app")
    demo.add_argument("--no-qr", action="store_true", help="print only the manual key")
    key = commands.add_parser(
        "generate-key",
        help="print a new key for MFAKIT_KEYS",
        description="Print a new AES-256 key entry (KEYID:BASE64URL) for MFAKIT_KEYS.",
    )
    key.add_argument("--key-id", default=None, help="key id (default: date and random suffix)")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Run the command line; returns the process exit status."""
    args = _parser().parse_args(argv)
    out = stdout if stdout is not None else sys.stdout
    if args.command == "generate-key":
        print(Keyring.generate_key(args.key_id), file=out)
        return 0
    return run_demo(
        account=args.account,
        issuer=args.issuer,
        show_qr=not args.no_qr,
        stdin=stdin if stdin is not None else sys.stdin,
        stdout=out,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

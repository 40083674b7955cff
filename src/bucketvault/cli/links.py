"""``bucketvault link create|revoke``: stable links from the command line."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bucketvault.cli.common import to_json
from bucketvault.client import BucketVaultClient


def add_link_parser(sub: Any) -> None:
    """Register ``link`` and its subcommands on the CLI's subparsers."""
    li = sub.add_parser("link", help="create and revoke stable links").add_subparsers(
        dest="sub", required=True
    )
    c = li.add_parser("create", help="a link to one key, or with --prefix to a prefix")
    c.add_argument("--tenant", required=True)
    c.add_argument("--mount", required=True)
    c.add_argument("--prefix", help="link every key under this prefix ('' = the mount's)")
    c.add_argument("--method", action="append", choices=("GET", "HEAD"), default=[])
    c.add_argument("--expires-in", type=int, default=0, help="seconds; 0 = never (default)")
    c.add_argument("key", nargs="*", help="one link per key (none with --prefix)")
    r = li.add_parser("revoke", help="links opened after this answer 404")
    r.add_argument("--tenant", required=True)
    r.add_argument("--mount", required=True)
    r.add_argument("--reason", default="")
    r.add_argument("link_id")


def run_link(args: argparse.Namespace, c: BucketVaultClient) -> int:
    """Run a ``link`` subcommand; 2 on a usage error."""
    if args.sub == "revoke":
        done = c.revoke_link(args.tenant, args.mount, args.link_id, reason=args.reason)
        print(json.dumps(to_json(done)))
        return 0
    if (args.prefix is not None) == bool(args.key):
        print("give one or more keys, or --prefix")
        return 2
    if args.prefix is not None:
        links = [
            c.create_link(
                args.tenant,
                args.mount,
                prefix=args.prefix,
                whole_prefix=True,
                methods=args.method,
                expires_in_seconds=args.expires_in,
            )
        ]
    else:
        links = c.create_links(
            args.tenant,
            args.mount,
            args.key,
            methods=args.method,
            expires_in_seconds=args.expires_in,
        )
    for link in links:
        if args.json:
            print(json.dumps(to_json(link)))
        else:
            print(f"{link.link_id}  {link.url}")
    return 0


__all__ = ["add_link_parser", "run_link"]

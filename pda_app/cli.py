"""``yima-pda``: the PDA core from a shell (the Kivy app comes with its own issue)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path

from pda_app.client import HubClient, PdaError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="yima-pda", description="Yima warehouse PDA (仓库出库)")
    parser.add_argument("--hub", required=True, help="hub base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--token", default=os.environ.get("YIMA_PDA_TOKEN"), help="API token")
    sub = parser.add_subparsers(dest="command", required=True)
    ship = sub.add_parser("ship", help="ship scanned codes on an order (activates them)")
    ship.add_argument("--order", required=True)
    ship.add_argument("--dealer", required=True)
    ship.add_argument("--region")
    ship.add_argument("--id", dest="shipment_id", help="shipment UUID; reuse it to retry safely")
    ship.add_argument(
        "codes", nargs="*", help="scanned codes; with none, one per line from --file or stdin"
    )
    ship.add_argument("--file", type=Path, help="file with one scanned code per line")
    args = parser.parse_args(argv)
    if not args.token:
        print("yima-pda: no token: pass --token or set YIMA_PDA_TOKEN", file=sys.stderr)
        return 2
    codes = list(args.codes)
    if not codes:
        source = args.file.read_text(encoding="utf-8") if args.file else sys.stdin.read()
        codes = [line.strip() for line in source.splitlines() if line.strip()]
    shipment_id = args.shipment_id or str(uuid.uuid4())
    try:
        result = HubClient(args.hub, args.token).ship(
            args.order, args.dealer, codes, region=args.region, shipment_id=shipment_id
        )
    except PdaError as exc:
        print(f"yima-pda: {exc} (retry with --id {shipment_id})", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if not result["refused"] else 3

"""``yima-sim``: simulated devices and a whole plant."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from simulators.plant import PlantOptions, run_forever, run_plant


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up exactly as Ctrl-C does


def _line(args: argparse.Namespace) -> int:
    from simulators.line import LineOptions, run_line

    options = LineOptions(
        rate=args.rate,
        items=args.items,
        defects=args.defects,
        fps=args.fps,
        realtime=not args.fast,
        seed=args.seed,
        timeout=args.timeout,
        noise_on_serial=args.serial_noise,
        decoder=args.decoder,
    )
    try:
        summary = run_line(options)
    except KeyboardInterrupt:
        return 130
    except (OSError, TimeoutError, ValueError, RuntimeError) as exc:
        print(f"yima-sim: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        for key, value in summary.items():
            print(f"{key:<20} {value}")
    return 0


def _consumers(args: argparse.Namespace) -> int:
    from simulators.consumers import ConsumerOptions, run_consumers

    options = ConsumerOptions(
        codes=args.codes,
        clones=args.clones,
        leaked=args.leaked,
        bots=args.bots,
        griefers=args.griefers,
        guesses_per_bot=args.guesses,
        seed=args.seed,
    )
    try:
        summary = run_consumers(options)
    except KeyboardInterrupt:
        return 130
    except (OSError, TimeoutError, ValueError, RuntimeError) as exc:
        print(f"yima-sim: {exc}", file=sys.stderr)
        return 1
    result = summary.as_dict()
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0 if summary.targets_met else 3


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(prog="yima-sim", description="Yima simulators (模拟器)")
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)
    plant = sub.add_parser("plant", help="hub + broker + camera line + shipping + consumers")
    plant.add_argument("--items", type=int, help="items to run end to end, then stop")
    plant.add_argument("--json", action="store_true", help="end with one JSON summary line")
    plant.add_argument("--hub-url", help="use this hub instead of starting one")
    plant.add_argument("--token", help="admin token of --hub-url")
    plant.add_argument("--mqtt-url", help="broker for the hub we start, or instead of the hub's")
    plant.add_argument("--forged", type=int, default=50, help="forged codes to try")
    plant.add_argument("--timeout", type=float, default=300.0, help="seconds for the line")
    plant.add_argument("--realtime", action="store_true", help="pace the camera at 20 fps")
    plant.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    line = sub.add_parser("line", help="a real edge agent on a simulated line, against a hub")
    line.add_argument("--rate", type=float, default=1200.0, help="items per minute")
    line.add_argument("--items", type=int, default=200, help="items to run")
    line.add_argument("--defects", choices=["none", "realistic", "harsh"], default="realistic")
    line.add_argument("--fps", type=float, default=60.0, help="camera frames per second")
    line.add_argument("--fast", action="store_true", help="do not pace frames in real time")
    line.add_argument("--seed", type=int, default=0)
    line.add_argument("--serial-noise", action="store_true", help="garbage on the photo-eye")
    line.add_argument("--decoder", choices=["zxingcpp", "pyzbar", "union"], default="zxingcpp")
    line.add_argument("--json", action="store_true", help="print one JSON summary line")
    line.add_argument("--timeout", type=float, default=600.0)
    consumers = sub.add_parser(
        "consumers", help="genuine consumers and attacks (clones, leaks, bots, griefers)"
    )
    consumers.add_argument("--codes", type=int, default=300, help="shipped codes with buyers")
    consumers.add_argument("--clones", type=int, default=20, help="codes copied onto fakes")
    consumers.add_argument("--leaked", type=int, default=10, help="never-shipped codes scanned")
    consumers.add_argument("--bots", type=int, default=2, help="serial-guessing clients")
    consumers.add_argument("--guesses", type=int, default=100, help="guesses per bot")
    consumers.add_argument("--griefers", type=int, default=5, help="griefed genuine codes")
    consumers.add_argument("--seed", type=int, help="random seed (default: random)")
    consumers.add_argument("--json", action="store_true", help="print one JSON summary line")
    pda = sub.add_parser("pda", help="the warehouse PDA's app core against a live hub")
    pda.add_argument("--orders", type=int, default=3, help="orders to import, scan and ship")
    pda.add_argument("--offline", action="store_true", help="scan every order with the hub down")
    pda.add_argument("--mistakes", action="store_true", help="wrong products, over-scans, ...")
    pda.add_argument("--json", action="store_true", help="end with one JSON summary line")
    pda.add_argument("--hub-url", help="use this hub instead of starting one")
    pda.add_argument("--token", help="admin token of --hub-url")
    pda.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.command == "consumers":
        return _consumers(args)
    if args.command == "line":
        logging.basicConfig(
            level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
        )
        return _line(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.command == "pda":
        return _pda(args, parser)
    options = PlantOptions(
        items=args.items,
        hub_url=args.hub_url,
        mqtt_url=args.mqtt_url,
        token=args.token,
        forged=args.forged,
        timeout=args.timeout,
        realtime=args.realtime,
        workdir=args.workdir,
    )
    if args.items is not None and args.items < 1:
        parser.error(f"--items expected a positive number, got {args.items}")
    say = (lambda _line: None) if args.json else print
    try:
        if args.items is None:
            run_forever(options, say=print)
            return 0
        summary = run_plant(options, say=say)
    except KeyboardInterrupt:
        return 130
    except (OSError, TimeoutError, ValueError, RuntimeError) as exc:
        print(f"yima-sim: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
    return 0


def _pda(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from simulators.pda import PdaOptions, run_pda

    if args.orders < 1:
        parser.error(f"--orders expected a positive number, got {args.orders}")
    options = PdaOptions(
        orders=args.orders,
        offline=args.offline,
        mistakes=args.mistakes,
        hub_url=args.hub_url,
        token=args.token,
        workdir=args.workdir,
    )
    say = (lambda _line: None) if args.json else print
    try:
        summary = run_pda(options, say=say)
    except KeyboardInterrupt:
        return 130
    except (OSError, TimeoutError, ValueError, RuntimeError) as exc:
        print(f"yima-sim: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary.as_dict(), ensure_ascii=False) if args.json else summary.as_dict())
    return 0 if summary.synced and summary.lost_scans == 0 else 3

"""``python -m simulator --host 127.0.0.1 --port 8011 [options]``.

Every option also reads an environment variable (shown in --help), so the demo and the
tests can configure a simulator they start as a subprocess.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from simulator.engine import FAULT_KINDS, SimulatorConfig, load_answer_key, parse_models
from simulator.server import SimulatorHTTPServer


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Touchstone's simulated OpenAI-compatible LLM server (SIMULATED output only).")
    parser.add_argument("--host", default=env("SIM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("SIM_PORT", "8011")))
    parser.add_argument("--model", action="append", dest="models", metavar="sim-NAME:ACCURACY[:SPREAD]",
                        help="a simulated model and its accuracy (repeatable; env SIM_MODELS, "
                             "comma-separated). Default: sim-strong:0.92, sim-medium:0.85, sim-weak:0.72")
    parser.add_argument("--answer-key", type=Path, default=env("SIM_ANSWER_KEY") or None,
                        help="JSONL of {text|sha256, label} reference answers (env SIM_ANSWER_KEY)")
    parser.add_argument("--latency-ms", type=float, default=float(env("SIM_LATENCY_MS", "0")),
                        help="time from a request to its answer, the simulator's own work included")
    parser.add_argument("--latency-jitter-ms", type=float, default=float(env("SIM_LATENCY_JITTER_MS", "0")))
    parser.add_argument("--fault-rate", type=float, default=float(env("SIM_FAULT_RATE", "0")),
                        help="share of requests that fail (env SIM_FAULT_RATE)")
    parser.add_argument("--faults", default=env("SIM_FAULTS", ",".join(FAULT_KINDS)),
                        help=f"fault kinds to inject, comma-separated from {', '.join(FAULT_KINDS)} "
                             "(env SIM_FAULTS)")
    parser.add_argument("--retry-after", type=float, default=float(env("SIM_RETRY_AFTER", "1")))
    parser.add_argument("--timeout-seconds", type=float, default=float(env("SIM_TIMEOUT_SECONDS", "30")),
                        help="how long a 'timeout' fault stalls before answering")
    parser.add_argument("--batch-seconds", type=float, default=float(env("SIM_BATCH_SECONDS", "2")),
                        help="how long a Batch API batch takes to complete")
    parser.add_argument("--verbose", action="store_true")
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    config = SimulatorConfig()
    specs = args.models or [s for s in os.environ.get("SIM_MODELS", "").split(",") if s]
    if specs:
        config.models = parse_models(specs)
    if args.answer_key:
        config.answer_key = load_answer_key(args.answer_key)
    kinds = tuple(k.strip() for k in args.faults.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; choose from {', '.join(FAULT_KINDS)}")
    if not 0.0 <= args.fault_rate <= 1.0:
        raise ValueError("--fault-rate must be within 0..1")
    config.latency_ms, config.latency_jitter_ms = args.latency_ms, args.latency_jitter_ms
    config.fault_rate, config.fault_kinds = args.fault_rate, kinds
    config.retry_after_seconds, config.timeout_seconds = args.retry_after, args.timeout_seconds
    config.batch_seconds = args.batch_seconds
    return config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except (ValueError, OSError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    server = SimulatorHTTPServer((args.host, args.port), config, verbose=args.verbose)
    print(f"Touchstone LLM SIMULATOR on http://{args.host}:{args.port}/v1 — models: "
          f"{', '.join(sorted(config.models))}; answer key: {len(config.answer_key)} entries; "
          f"latency {config.latency_ms:g}±{config.latency_jitter_ms:g} ms; fault rate "
          f"{config.fault_rate:g} ({', '.join(config.fault_kinds)}). Output is simulated.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

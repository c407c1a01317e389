"""CLI: python -m trainer {run,optimize,validate,bench,models} ... — events on stdout, logs on stderr."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import List, NoReturn, Optional, TextIO

from .protocol import MODEL_NAMES, Emitter, SpecError, emit_failure, load_spec_file, validate_job_spec, \
    validate_study_spec


def claim_stdout() -> TextIO:
    """Keep fd 1 for events only: events get a private duplicate of it, and fd 1 itself is pointed
    at stderr, so stray prints (ours, torch's, C libraries') cannot corrupt the JSON-lines stream."""
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(events_fd, "w", buffering=1, encoding="utf-8")


class _Parser(argparse.ArgumentParser):
    emitter: Optional[Emitter] = None

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        if _Parser.emitter is not None:
            _Parser.emitter.emit("failed", reason=f"bad command line: {message}", error_type="UsageError")
        sys.exit(1)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m trainer", description="X-ray classifier training worker (JSON-lines events)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, text in (("run", "train one job"), ("optimize", "run an Optuna study"),
                       ("validate", "check a job (or --study) spec and print it normalised")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--spec", required=True, help="path to the JSON spec")
        if name == "validate":
            p.add_argument("--study", action="store_true", help="validate a study spec")
    b = sub.add_parser("bench", help="images/s: pure training steps vs. data loading + augmentation + step")
    b.add_argument("--model", default="compact_cnn", choices=MODEL_NAMES)
    b.add_argument("--input-size", type=int, default=128)
    b.add_argument("--steps", type=int, default=50)
    b.add_argument("--batch-size", type=int, default=32)
    b.add_argument("--threads", type=int, default=0)
    b.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    b.add_argument("--warmup", type=int, default=3)
    b.add_argument("--dataset-dir", default=None, help="use this export's train split instead of synthetic data")
    sub.add_parser("models", help="list the model names")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    events = claim_stdout()
    rank = int(os.environ.get("RANK", "0") or 0)
    if rank != 0:  # under torchrun only rank 0 reports; the others share its stdout
        events.close()
        events = open(os.devnull, "w", encoding="utf-8")
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("TRAINER_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    emitter = Emitter(events)
    _Parser.emitter = emitter
    args = build_parser().parse_args(argv)

    if args.command == "models":
        emitter.emit("models", models=list(MODEL_NAMES))
        return 0
    if args.command == "bench":
        if args.steps < 1 or args.input_size < 16 or args.batch_size < 2:
            emitter.emit("failed", reason="bench needs --steps >= 1, --input-size >= 16, --batch-size >= 2",
                         error_type="UsageError")
            return 1
        from .bench import run_bench
        try:
            result = run_bench(args.model, args.input_size, args.steps, args.batch_size, args.threads,
                               args.device, args.warmup, args.dataset_dir)
        except Exception as exc:  # noqa: BLE001
            logging.getLogger("trainer").exception("bench failed")
            emit_failure(emitter, exc)
            return 1
        emitter.emit("bench", **result)
        return 0

    # Spec problems are reported before torch is imported, so they come back in milliseconds.
    try:
        raw = load_spec_file(args.spec)
        if args.command == "optimize" or (args.command == "validate" and args.study):
            normalised = validate_study_spec(raw)
        elif raw.get("ensemble") is not None:  # an ensemble of finished jobs (trainer/ensemble.py; imports torch)
            from .ensemble import validate_ensemble_spec
            normalised = validate_ensemble_spec(raw)
        else:
            normalised = validate_job_spec(raw)
    except Exception as exc:  # noqa: BLE001 - SpecError, or a bug in validation: report either
        if not isinstance(exc, SpecError):
            logging.getLogger("trainer").exception("spec validation crashed")
        emit_failure(emitter, exc)
        return 1
    if args.command == "validate":
        emitter.emit("spec", spec=normalised)
        return 0

    from .train import CancelToken

    cancel = CancelToken()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: cancel.request())
    if args.command == "run" and raw.get("ensemble") is not None:
        from .ensemble import run_ensemble_job
        return run_ensemble_job(raw, emitter, cancel)
    if args.command == "run":
        from .train import run_job
        code = run_job(raw, emitter, cancel)
        if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
            # No interpreter teardown: it would free the gloo process group (see Dist.keep).
            events.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        emitter.emit("failed", reason="optimize runs in one process; start it without torchrun",
                     error_type="UsageError")
        return 1
    from .optimize import run_study
    return run_study(raw, emitter, cancel)


if __name__ == "__main__":
    sys.exit(main())

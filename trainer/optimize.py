"""Hyperparameter search with Optuna: each trial is an ordinary training job in
output_dir/trial-<n>/, reporting val AUC per epoch to the pruner."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from .protocol import SpecError, apply_trial_params, emit_failure, to_jsonable, validate_job_spec, validate_study_spec
from .train import CancelToken, execute_job

log = logging.getLogger("trainer.optimize")

# Events of the inner job that are passed on (tagged with "trial"); `finished` is folded into
# trial_finished so a consumer never mistakes a trial's end for the study's.
FORWARDED = {"started", "progress", "epoch", "checkpoint", "evaluation", "artifact", "cancelled"}


class TrialEmitter:
    def __init__(self, emitter: Any, trial: int):
        self._emitter = emitter
        self._trial = trial

    def emit(self, event: str, **fields: Any) -> Optional[Dict[str, Any]]:
        if event not in FORWARDED:
            return None
        return self._emitter.emit(event, trial=self._trial, **fields)


def _suggest(trial: Any, key: str, dist: Dict[str, Any]) -> Any:
    if dist["type"] == "categorical":
        return trial.suggest_categorical(key, dist["choices"])
    if dist["type"] == "int":
        return trial.suggest_int(key, dist["low"], dist["high"], step=int(dist["step"] or 1), log=dist["log"])
    return trial.suggest_float(key, dist["low"], dist["high"], step=dist["step"], log=dist["log"])


def _pruner(optuna: Any, study: Dict[str, Any], epochs: int) -> Any:
    if study["pruner"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=study["pruner_startup_trials"],
                                           n_warmup_steps=study["pruner_warmup_epochs"])
    if study["pruner"] == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1), reduction_factor=3)
    return optuna.pruners.NopPruner()


def run_study(raw_spec: Dict[str, Any], emitter: Any, cancel: Optional[CancelToken] = None) -> int:
    """Validate and run a study; returns the process exit code."""
    cancel = cancel or CancelToken()
    try:
        validated = validate_study_spec(raw_spec)
        return _run(validated["job"], validated["study"], emitter, cancel)
    except Exception as exc:  # noqa: BLE001 - reported as an event
        if not isinstance(exc, SpecError):
            log.exception("study failed")
        emit_failure(emitter, exc)
        return 1


def _run(job: Dict[str, Any], study_spec: Dict[str, Any], emitter: Any, cancel: CancelToken) -> int:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(job["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(out / 'study.db').resolve()}" if study_spec["storage"] == "sqlite" else None
    study = optuna.create_study(
        direction=study_spec["direction"],
        sampler=optuna.samplers.TPESampler(seed=job["seed"]),
        pruner=_pruner(optuna, study_spec, job["hyperparameters"]["epochs"]),
        storage=storage,
        study_name=study_spec["study_name"] or job["job_id"],
        load_if_exists=storage is not None,
    )
    records: Dict[int, Dict[str, Any]] = {}
    cancelled = {"flag": False}

    def objective(trial: Any) -> float:
        n = trial.number
        params = {key: _suggest(trial, key, dist) for key, dist in study_spec["search_space"].items()}
        trial_dir = out / f"trial-{n}"
        record: Dict[str, Any] = {"trial": n, "state": "running", "value": None, "params": params,
                                  "output_dir": str(trial_dir)}
        records[n] = record
        emitter.emit("trial_started", trial=n, params=params, output_dir=str(trial_dir))
        try:
            raw = apply_trial_params(job, params)
            raw.update(output_dir=str(trial_dir), job_id=f"{job['job_id']}-trial-{n}")
            spec = validate_job_spec(raw)
        except SpecError as exc:
            record["state"] = "failed"
            emitter.emit("trial_failed", trial=n, reason=f"sampled parameters are invalid: {exc}",
                         error_type="SpecError")
            raise

        def on_epoch(epoch: int, auc: Optional[float]) -> None:
            if auc is None:
                return
            trial.report(auc, epoch)
            if trial.should_prune():
                record.update(state="pruned", pruned_epoch=epoch, value=auc)
                emitter.emit("trial_pruned", trial=n, epoch=epoch, value=auc)
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        try:
            result = execute_job(spec, TrialEmitter(emitter, n), cancel, on_epoch)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            record["state"] = "failed"
            log.exception("trial %d failed", n)
            emitter.emit("trial_failed", trial=n, reason=str(exc) or type(exc).__name__,
                         error_type=type(exc).__name__)
            raise
        if result.get("cancelled"):
            record["state"] = "cancelled"
            cancelled["flag"] = True
            trial.study.stop()
            # Recorded by Optuna as pruned (quietly); our own record says cancelled.
            raise optuna.TrialPruned("cancelled by signal")
        value = result["best_val_auc"]
        record.update(state="complete", value=value, best_epoch=result["best_epoch"],
                      threshold=result["threshold"])
        emitter.emit("trial_finished", trial=n, value=value, params=params, output_dir=str(trial_dir),
                     best_epoch=result["best_epoch"], metrics=result["metrics"], artifacts=result["artifacts"])
        return float("nan") if value is None else float(value)

    def stop_if_cancelled(study_: Any, _trial: Any) -> None:
        if cancel.requested:
            cancelled["flag"] = True
            study_.stop()

    study.optimize(objective, n_trials=study_spec["n_trials"], timeout=study_spec["timeout_s"],
                   n_jobs=study_spec["concurrency"], catch=(Exception,), callbacks=[stop_if_cancelled],
                   gc_after_trial=True)

    trials: List[Dict[str, Any]] = [records[k] for k in sorted(records)]
    complete = [t for t in trials if t["state"] == "complete" and t["value"] is not None]
    best = None
    if complete:
        pick = max if study_spec["direction"] == "maximize" else min
        best = pick(complete, key=lambda t: t["value"])
    summary = {
        "best_trial": best["trial"] if best else None,
        "best_value": best["value"] if best else None,
        "best_params": best["params"] if best else None,
        "best_output_dir": best["output_dir"] if best else None,
        "trials": trials,
        "cancelled": cancelled["flag"],
        "direction": study_spec["direction"],
    }
    (out / "study.json").write_text(json.dumps(to_jsonable(summary), indent=1))
    emitter.emit("study_finished", **summary)
    if best is None and not cancelled["flag"]:
        emitter.emit("failed", reason="no trial completed", error_type="StudyError")
        return 1
    return 0

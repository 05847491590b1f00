"""The experiment runner: running (or reusing) planned training runs and reading their results.

Each run is one ``tools/train_net.py`` process (:func:`_train` is the one place that starts one
and waits for it); a finished run is reused when its folder holds an evaluation and a stamp of
the same merged config. With a :class:`~csgr.utils.progress.ProgressBoard`, every run shows its
live progress (iteration, s/it, ETA, loss, then AP) while it trains.
"""

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

import portalocker

from ..config import load_config
from ..engine.checkpoint import atomic_write
from ..errors import DIVERGED_EXIT_STATUS
from ..utils.progress import ProgressBoard
from .accuracy_runs import Run
from .evaluate_run import evaluate_finished
from .run_digest import config_digests
from .run_metrics import final_metrics, given_teacher_metrics, report_dataset

__all__ = [
    "STAMP",
    "final_metrics",
    "report_dataset",
    "given_teacher_metrics",
    "run_or_reuse",
    "run_many",
    "plan_progress",
]

STAMP = "csgr_benchmark_stamp.json"


class RunDivergedError(RuntimeError):
    """A run's training stopped because it diverged (tools/train_net.py exited with
    :data:`~csgr.errors.DIVERGED_EXIT_STATUS`)."""


def _train(run: Run, threads: Optional[int], log, progress: Optional[ProgressBoard]) -> float:
    """Launch ``run``'s training process, wait for it, and return its wall seconds.

    The one place a run's subprocess is started; its stdout and stderr go to
    ``<output_dir>/stdout.log``. While it runs, ``progress`` (if any) is refreshed every second.

    Raises:
        RunDivergedError: the training diverged; RuntimeError: the process failed otherwise.
            The message ends with the log's last lines.
    """
    log_path = os.path.join(run.output_dir, "stdout.log")
    log(f"[{run.name}] {' '.join(run.command()[1:])}  (log: {log_path})")
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    with open(log_path, "w") as f:
        proc = subprocess.Popen(
            run.command(), cwd=run.cwd, stdout=f, stderr=subprocess.STDOUT, env=env
        )
        if progress is not None and run.name in progress.rows:
            progress.start(run.name)
        while proc.poll() is None:
            if progress is not None:
                progress.refresh()
            try:
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = "".join(f.readlines()[-30:])
        if proc.returncode == DIVERGED_EXIT_STATUS:
            raise RunDivergedError(
                f"[{run.name}] diverged (exit {proc.returncode}); end of {log_path}:\n{tail}"
            )
        raise RuntimeError(
            f"[{run.name}] failed (exit {proc.returncode}); end of {log_path}:\n{tail}"
        )
    return seconds


def run_or_reuse(
    run: Run,
    reuse: bool,
    log=print,
    threads: Optional[int] = None,
    progress: Optional[ProgressBoard] = None,
    dataset: Optional[str] = None,
    evaluate_on: Optional[str] = None,
) -> Tuple[Dict[str, float], float, bool]:
    """Train and evaluate ``run`` through tools/train_net.py, or reuse its finished results.

    A run is reused (with ``reuse``) when its folder has a bbox evaluation in metrics.json and a
    stamp of the same merged config; anything else trains again from scratch. A run that
    diverged (its training stopped with ``NonFiniteLossError``) is stamped too: with ``reuse``
    and the same merged config its divergence is reported again without training (the same
    config diverges the same way); any other failure trains again.

    Args:
        threads: ``OMP_NUM_THREADS`` of the training process (None: inherited).
        progress: a board planned with :func:`plan_progress`; the run's row shows its progress.
        dataset: with several ``DATASETS.TEST``, the one whose metrics are returned (default:
            the first); every one is evaluated and kept in the run's metrics.json.
        evaluate_on: a test set to evaluate the finished run on afterwards, whose metrics are
            returned instead (see :mod:`.evaluate_run`; kept and reused per weights).

    Returns:
        (metrics, wall seconds of the training, whether it was reused).

    Raises:
        RuntimeError: the training failed (the message ends with the log's last lines), wrote
            no evaluation, (reused) diverged, or another process is training the same folder
            (it holds ``<output_dir>/.csgr_run.lock``).
    """
    os.makedirs(run.output_dir, exist_ok=True)
    lock_path = os.path.join(run.output_dir, ".csgr_run.lock")
    lock = portalocker.Lock(lock_path, "a", timeout=0, fail_when_locked=True)
    try:
        lock.acquire()
    except portalocker.exceptions.LockException:
        _finish(progress, run, None, "failed")
        raise RuntimeError(
            f"[{run.name}] another process is training {run.output_dir} (it holds {lock_path}): "
            "wait for it or stop it, then run again with --reuse"
        ) from None
    try:
        digests = config_digests(run)
        metrics, seconds, reused = _run_or_reuse_locked(
            run, digests, reuse, log, threads, progress, dataset
        )
        if evaluate_on:
            metrics = evaluate_finished(run, evaluate_on, digests[0], threads=threads, log=log)
        return metrics, seconds, reused
    finally:
        lock.release()


def _run_or_reuse_locked(run, digests, reuse, log, threads, progress, dataset):
    digest = digests[0]
    dataset = report_dataset(run, dataset)
    stamp_path = os.path.join(run.output_dir, STAMP)
    if reuse and os.path.isfile(stamp_path):
        with open(stamp_path) as f:
            stamp = json.load(f)
        same_config = stamp.get("config_sha256") in digests
        if same_config and "diverged" in stamp:
            log(f"[{run.name}] reusing the recorded divergence of {run.output_dir}")
            _finish(progress, run, None, "diverged")
            raise RuntimeError(stamp["diverged"])
        metrics = final_metrics(run.output_dir, dataset)
        if same_config and metrics is not None:
            if stamp["config_sha256"] != digest:  # an earlier digest: stamp today's
                _write_stamp(stamp_path, {**stamp, "config_sha256": digest})
            log(f"[{run.name}] reusing {run.output_dir}")
            _finish(progress, run, metrics, "reused")
            return metrics, float(stamp.get("seconds", float("nan"))), True
    os.makedirs(run.output_dir, exist_ok=True)
    for stale in (STAMP, "metrics.json", "last_checkpoint"):
        if os.path.exists(os.path.join(run.output_dir, stale)):
            os.remove(os.path.join(run.output_dir, stale))
    try:
        seconds = _train(run, threads, log, progress)
    except RuntimeError as e:
        diverged = isinstance(e, RunDivergedError)
        _finish(progress, run, None, "diverged" if diverged else "failed")
        if diverged:
            stamp = {"config_sha256": digest, "command": run.command(), "diverged": str(e)}
            _write_stamp(stamp_path, stamp)
        raise
    metrics = final_metrics(run.output_dir, dataset)
    if metrics is None:
        _finish(progress, run, None, "failed")
        of = f" of {dataset}" if dataset else ""
        raise RuntimeError(
            f"[{run.name}] wrote no bbox evaluation{of} to {run.output_dir}/metrics.json"
        )
    _finish(progress, run, metrics, "done")
    _write_stamp(
        stamp_path, {"config_sha256": digest, "command": run.command(), "seconds": seconds}
    )
    log(f"[{run.name}] done in {seconds / 60:.1f} min: AP {metrics['AP']:.2f}")
    return metrics, seconds, False


def _write_stamp(path: str, stamp: dict) -> None:
    """Write a run's stamp whole or not at all (an interrupted write leaves the old one)."""
    atomic_write(path, lambda f: f.write(json.dumps(stamp).encode()))


def _finish(progress, run: Run, metrics, state: str) -> None:
    if progress is not None and run.name in progress.rows:
        progress.finish(run.name, ap=metrics["AP"] if metrics else None, state=state)


def plan_progress(teacher: Optional[Run], students: List[Run], jobs: int, **board_kwargs):
    """A :class:`ProgressBoard` with a row per run: the teacher first, then the students in the
    groups of ``jobs`` that train side by side. Totals are the runs' merged ``SOLVER.MAX_ITER``.
    """
    board = ProgressBoard(**board_kwargs)
    runs = ([teacher] if teacher is not None else []) + list(students)
    for i, run in enumerate(runs):
        stage = 0 if run is teacher else 1 + (i - (teacher is not None)) // max(jobs, 1)
        total = load_config(run.config_file, run.opts).SOLVER.MAX_ITER
        board.add(run.name, run.name, total, stage=stage, output_dir=run.output_dir)
    return board


def run_many(
    runs: List[Run],
    reuse: bool,
    jobs: int = 1,
    log=print,
    progress: Optional[ProgressBoard] = None,
    dataset: Optional[str] = None,
    evaluate_on: Optional[str] = None,
) -> list:
    """:func:`run_or_reuse` for several runs, ``jobs`` of them at a time.

    With ``jobs > 1`` each process gets ``max(1, cpu_count // jobs)`` threads: on a small CPU two
    small trainings side by side use the cores better than one after the other. The runs are
    independent (different output folders); their results do not depend on ``jobs`` beyond the
    floating-point effects of the thread count.

    Returns:
        per run, in order: ``(metrics, seconds, reused)``, or the ``RuntimeError`` it raised.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None

    def one(run):
        try:
            return run_or_reuse(
                run,
                reuse,
                log=log,
                threads=threads,
                progress=progress,
                dataset=dataset,
                evaluate_on=evaluate_on,
            )
        except RuntimeError as e:
            return e

    if jobs == 1:
        return [one(run) for run in runs]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, runs))

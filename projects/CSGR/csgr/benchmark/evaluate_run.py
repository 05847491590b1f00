"""Evaluating a finished run on a test set it was not evaluated on during training.

A study trained with ``DATASETS.TEST`` of one split can be reported on another afterwards
(``tools/benchmark_accuracy.py --evaluate-on DATASET``): each run's final weights are evaluated
by ``python -m csgr.benchmark.evaluate_run`` in a process of its own (as the training ran), and
the result is kept in ``<run>/evaluate/<DATASET>/results.json`` with the run's config digest,
the weights' SHA-256 and the test set's annotations, so a later report reuses it and a retrained
run (or a changed test set) is evaluated again.
"""

import argparse
import functools
import json
import os
import subprocess
import sys
from typing import Dict, Optional

from ..release.export import file_sha256
from .accuracy_runs import METRICS, Run
from .run_digest import config_digest
from .run_metrics import final_metrics, report_dataset

__all__ = ["dataset_identity", "evaluate_finished", "evaluate_given_teacher", "evaluation_path"]


def evaluation_path(output_dir: str, dataset: str) -> str:
    """Where the evaluation of the run in ``output_dir`` on ``dataset`` is kept."""
    return os.path.join(output_dir, "evaluate", dataset, "results.json")


def dataset_identity(dataset: str) -> str:
    """What ``dataset``'s content is known by: its annotation file's path and SHA-256 (COCO
    format), or its folder (PASCAL VOC); the name alone where its metadata names neither. The
    dataset is loaded once per process and dataset root (``$DETECTRON2_DATASETS``): loading is
    what points the metadata's paths at the current root."""
    return _dataset_identity(dataset, os.environ.get("DETECTRON2_DATASETS", ""))


@functools.lru_cache(maxsize=None)
def _dataset_identity(dataset: str, root: str) -> str:
    from detectron2.data import DatasetCatalog, MetadataCatalog

    DatasetCatalog.get(dataset)
    meta = MetadataCatalog.get(dataset)
    json_file = getattr(meta, "json_file", None)
    if json_file and os.path.isfile(json_file):
        return f"{os.path.realpath(json_file)} {file_sha256(json_file)}"
    dirname = getattr(meta, "dirname", None)
    return os.path.realpath(dirname) if dirname else dataset


def evaluate_finished(
    run: Run,
    dataset: str,
    config_sha256: str,
    weights: Optional[str] = None,
    threads: Optional[int] = None,
    log=print,
) -> Dict[str, float]:
    """The box metrics of ``run``'s final weights on ``dataset`` (evaluated now, or reused).

    Args:
        run: a finished run (its ``config_file`` and ``opts`` build the model).
        dataset: a registered test set; the run's own ``DATASETS.TEST`` is replaced by it.
        config_sha256: the run's config digest (``run_digest.config_digest``), kept with the result.
        weights: the weights evaluated (default ``<run.output_dir>/model_final.pth``).
        threads: ``OMP_NUM_THREADS`` of the evaluation process (None: inherited).

    Returns:
        AP, AP50, AP75, APs, APm, APl on ``dataset``, plus the run's training scalars of
        :func:`final_metrics` (a calibrated run's loss-scale factors).

    Raises:
        RuntimeError: no weights, or the evaluation failed (the message ends with its log).
    """
    weights = weights or os.path.join(run.output_dir, "model_final.pth")
    if not os.path.isfile(weights):
        raise RuntimeError(f"[{run.name}] has no weights to evaluate on {dataset}: {weights}")
    path = evaluation_path(run.output_dir, dataset)
    identity = {
        "config_sha256": config_sha256,
        "weights_sha256": file_sha256(weights),
        "dataset_files": dataset_identity(dataset),
    }
    bbox = None
    if os.path.isfile(path):
        with open(path) as f:
            kept = json.load(f)
        if all(kept.get(k) == v for k, v in identity.items()):
            bbox = kept["bbox"]
            log(f"[{run.name}] reusing its evaluation on {dataset} ({path})")
    if bbox is None:
        bbox = _evaluate(run, dataset, weights, path, threads, log)
        with open(path, "w") as f:
            json.dump({**identity, "dataset": dataset, "bbox": bbox}, f, indent=1)
    own = final_metrics(run.output_dir, report_dataset(run)) or {}
    return {
        **{m: float(bbox.get(m, float("nan"))) for m in METRICS},
        **{k: v for k, v in own.items() if k not in METRICS},
    }


def evaluate_given_teacher(
    weights: str, dataset: str, log=print, like: Optional[Run] = None
) -> Optional[Dict[str, float]]:
    """A given teacher's metrics on ``dataset``, evaluated with the config.yaml its folder holds
    (what tools/train_net.py wrote) and the modules and folder of the study's runs (``like``);
    None without that config or when its evaluation fails (the report goes on without it)."""
    folder = os.path.dirname(os.path.abspath(weights))
    config = os.path.join(folder, "config.yaml")
    if not os.path.isfile(config):
        log(f"[teacher] no config.yaml beside {weights}: not evaluated on {dataset}")
        return None
    register, cwd = (like.register, like.cwd) if like is not None else ((), ".")
    run = Run("teacher", 0, config, folder, register=register, cwd=cwd)
    try:
        return evaluate_finished(run, dataset, config_digest(run), weights=weights, log=log)
    except RuntimeError as e:
        log(str(e))
        return None


def _evaluate(run: Run, dataset: str, weights: str, path: str, threads, log) -> Dict[str, float]:
    out_dir = os.path.dirname(path)
    os.makedirs(out_dir, exist_ok=True)
    log_path = os.path.join(out_dir, "stdout.log")
    cmd = [sys.executable, "-m", "csgr.benchmark.evaluate_run", "--config-file", run.config_file]
    for module in run.register:
        cmd += ["--register", module]
    cmd += ["--weights", weights, "--dataset", dataset, "--output", path, *run.opts]
    log(f"[{run.name}] evaluating {weights} on {dataset}  (log: {log_path})")
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    with open(log_path, "w") as f:
        proc = subprocess.run(cmd, cwd=run.cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        with open(log_path) as f:
            tail = "".join(f.readlines()[-30:])
        raise RuntimeError(
            f"[{run.name}] evaluation on {dataset} failed (exit {proc.returncode}); end of "
            f"{log_path}:\n{tail}"
        )
    with open(path) as f:
        written = json.load(f)
    if written.get("datasets") != [dataset]:
        raise RuntimeError(f"[{run.name}] evaluated {written.get('datasets')}, not [{dataset!r}]")
    return written["bbox"]


def main(argv=None) -> None:
    """Evaluate one set of weights on one test set; write ``{"bbox": {...}}`` to --output."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--register", action="append", default=[])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("opts", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    import csgr  # noqa: F401  registers models, losses, datasets
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.utils.logger import setup_logger

    from ..config import load_config
    from ..engine import Trainer
    from ..engine.user_modules import import_user_modules

    setup_logger()
    import_user_modules(args.register)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    opts = [*args.opts, "DATASETS.TEST", f"('{args.dataset}',)", "OUTPUT_DIR", out_dir]
    cfg = load_config(args.config_file, opts)
    model = Trainer.build_model(cfg)
    DetectionCheckpointer(model).load(args.weights)
    results = Trainer.test(cfg, model)
    results = results.get(args.dataset, results)  # one test set: Detectron2 unwraps it
    with open(args.output, "w") as f:
        json.dump({"datasets": list(cfg.DATASETS.TEST), "bbox": dict(results["bbox"])}, f, indent=1)


if __name__ == "__main__":
    main()

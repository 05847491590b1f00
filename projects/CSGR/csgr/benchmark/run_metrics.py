"""What a finished run's folder says it scored: the last box evaluation of its metrics.json, of
the test set a report is about (a run may evaluate several), and that of a given teacher."""

import os
from typing import Dict, Optional

import yaml

from ..config import load_config
from ..evaluation import last_evaluation, last_values, read_metrics
from ..modeling.loss_scale import SCALAR_PREFIX
from .accuracy_runs import METRICS, Run

__all__ = ["final_metrics", "report_dataset", "given_teacher_metrics"]


def final_metrics(
    output_dir: str, dataset_name: Optional[str] = None
) -> Optional[Dict[str, float]]:
    """The last box evaluation of ``output_dir/metrics.json`` and, for a calibrated run, its
    loss-scale factors (``"loss_scale/<method>"``); None if there is no evaluation.

    Args:
        dataset_name: with several test sets, the one whose evaluation is read (Detectron2
            writes ``<dataset>/bbox/<metric>`` then); a single test set's is read either way.
    """
    path = os.path.join(output_dir, "metrics.json")
    if not os.path.isfile(path):
        return None
    records = read_metrics(path)
    found = last_evaluation(records, dataset_name)
    if "AP" not in found:
        return None
    return {
        **{m: found.get(m, float("nan")) for m in METRICS},
        **last_values(records, SCALAR_PREFIX),
    }


def report_dataset(run: Run, dataset: Optional[str] = None) -> Optional[str]:
    """The test set whose evaluation of ``run`` is reported: ``dataset``, or the first of the
    run's ``DATASETS.TEST``; None when the run evaluates one test set only (its metrics carry no
    dataset name).

    Raises:
        ValueError: ``dataset`` is not one of the run's test sets (the message names both).
    """
    test = list(load_config(run.config_file, run.opts).DATASETS.TEST)
    if dataset is not None and dataset not in test:
        raise ValueError(
            f"[{run.name}] the report's test set {dataset!r} is not in its DATASETS.TEST {test}"
        )
    if len(test) < 2:
        return None
    return dataset or test[0]


def given_teacher_metrics(weights: str, dataset: Optional[str] = None):
    """The evaluation recorded beside a given teacher's weights (its folder's metrics.json), or
    None. With ``dataset`` named (several test sets), only an evaluation of that test set counts:
    the folder's config.yaml must list it in DATASETS.TEST."""
    folder = os.path.dirname(os.path.abspath(weights))
    if dataset is None:
        return final_metrics(folder)
    config = os.path.join(folder, "config.yaml")
    if not os.path.isfile(config):
        return None
    with open(config) as f:
        test = list((yaml.safe_load(f) or {}).get("DATASETS", {}).get("TEST", []) or [])
    if dataset not in test:
        return None
    return final_metrics(folder, dataset if len(test) > 1 else None)

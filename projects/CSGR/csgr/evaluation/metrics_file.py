"""Reading Detectron2's ``metrics.json`` (one JSON record per line, written by its JSONWriter)."""

import json
from typing import Dict, List, Optional, Sequence

__all__ = ["read_metrics", "last_evaluation", "last_values"]


def read_metrics(path: str) -> List[dict]:
    """The records of a ``metrics.json``.

    Raises:
        ValueError: naming the file and line of a record that is not JSON.
    """
    records = []
    with open(path) as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{i} is not a JSON record: {e}") from e
    return records


def last_evaluation(
    records: Sequence[dict], dataset_name: Optional[str] = None
) -> Dict[str, float]:
    """The box metrics of the last record holding an evaluation, by metric name (``"AP"``,
    ``"AP50"``, ...); ``{}`` if there is none.

    Args:
        records: see :func:`read_metrics`.
        dataset_name: with several test sets Detectron2 writes ``<dataset>/bbox/<metric>``;
            those of this dataset are read too.
    """
    prefixes = ["bbox/"] + ([f"{dataset_name}/bbox/"] if dataset_name else [])
    found: Dict[str, float] = {}
    for record in records:
        values = {
            key[len(p) :]: float(value)
            for key, value in record.items()
            for p in prefixes
            if key.startswith(p)
        }
        if values:
            found = values
    return found


def last_values(records: Sequence[dict], prefix: str) -> Dict[str, float]:
    """The last value of every key starting with ``prefix`` (e.g. ``"loss_scale/"``, the factors
    a calibrated run logs), by full key; ``{}`` if there is none."""
    found: Dict[str, float] = {}
    for record in records:
        found.update({k: float(v) for k, v in record.items() if k.startswith(prefix)})
    return found

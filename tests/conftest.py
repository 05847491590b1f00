"""Shared pytest fixtures; tests marked ``cuda`` skip without enough CUDA devices."""

import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` (``cuda(devices=N)``: N devices) skip without enough CUDA devices."""
    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for item in items:
        marker = item.get_closest_marker("cuda")
        if marker is None:
            continue
        needed = marker.kwargs.get("devices", 1)
        if found < needed:
            reason = "needs CUDA" if needed == 1 else f"needs {needed} CUDA devices, found {found}"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def restore_catalogs():
    """Snapshot Detectron2's global DatasetCatalog and MetadataCatalog; restore them after the
    test, so a test may re-register names or refresh metadata paths without affecting others."""
    datasets = dict(DatasetCatalog)
    metadata = {name: dict(meta.__dict__) for name, meta in MetadataCatalog.items()}
    yield
    DatasetCatalog.clear()
    DatasetCatalog.update(datasets)
    for name in list(MetadataCatalog.keys()):
        if name not in metadata:
            MetadataCatalog.remove(name)
    for name, saved in metadata.items():
        meta = MetadataCatalog.get(name)
        meta.__dict__.clear()
        meta.__dict__.update(saved)

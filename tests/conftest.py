"""Shared pytest fixtures."""

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog


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

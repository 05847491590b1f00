"""Registers every dataset of the project; imported (once) by ``csgr.data``.

Like Detectron2's ``builtin.py``, registration only records names, metadata and loaders: no
file is read until ``DatasetCatalog.get`` is called, and the dataset root
(``$DETECTRON2_DATASETS``, default ``datasets``) is read at that time.

Names:
    soda10m_{train,val,test}                 SODA10M (SSLAD-2D) labeled, 6 classes, COCO eval
    voc_{2007,2012}_{train,val,trainval},    PASCAL VOC, Detectron2's names, 20 classes,
    voc_2007_test                            PASCAL VOC eval
    minicoco_train (+ coco_2017_val)         MiniCOCO, 80 COCO classes, COCO eval
    csgr_shapes_{train,val,test}             offline generated shapes, 8 classes, COCO eval
    coral_{train,val,choice,test}            tiles of a coral orthomosaic, 4 classes, COCO eval
"""

from .coral import register_all_coral
from .minicoco import register_all_minicoco
from .shapes import register_all_shapes
from .soda10m import register_all_soda10m
from .voc import register_all_pascal_voc

__all__ = ["register_all"]


def register_all() -> None:
    """Register (idempotently) all the datasets listed in this module's docstring."""
    register_all_soda10m()
    register_all_pascal_voc()
    register_all_minicoco()
    register_all_shapes()
    register_all_coral()


register_all()

"""The method configs of configs/<dataset>/: one per registered method, dataset and student type
the method applies to, each loading as a Distiller of that method and differing from CSGR's
config of the same pair in the method only."""

import os

import pytest
from tiny_models import ROOT, config_from_file

from csgr.modeling.losses import get_method, method_names

DATASETS = {"Shapes": "r18_r34", "SODA10M": "r50_r101_1x", "VOC": "r50_r101_18k"}
DATASETS["MiniCOCO"] = "r50_r101_1x"
PREFIXES = {"GeneralizedRCNN": "frcnn", "RetinaNet": "retinanet"}
REFERENCE = {"CSGR": "the configs the others are compared with"}
SHAPES_ONLY = {("IKD", "RetinaNet"): "IKD without its logit term is configured on Shapes only"}

CONFIGS = [
    (dataset, f"{m.lower()}_{prefix}_{suffix}.yaml", m)
    for dataset, suffix in DATASETS.items()
    for m in method_names()
    if m not in REFERENCE
    for arch, prefix in PREFIXES.items()
    if get_method(m).applies_to(arch) and (dataset == "Shapes" or (m, arch) not in SHAPES_ONLY)
]


def test_exclusions_name_registered_methods():
    assert set(REFERENCE) <= set(method_names()), "stale exclusion"
    assert all(get_method(m).applies_to(arch) for m, arch in SHAPES_ONLY), "stale exclusion"


@pytest.mark.parametrize("dataset, name, method", CONFIGS)
def test_configs_switch_only_the_method(dataset, name, method):
    folder = os.path.join(ROOT, "configs", dataset)
    cfg = config_from_file(os.path.join(folder, name))
    csgr_cfg = config_from_file(os.path.join(folder, "csgr_" + name.split("_", 1)[1]))
    assert list(cfg.MODEL.DISTILL.METHODS) == [method]
    assert cfg.OUTPUT_DIR == f"output/{dataset}/{name[:-5]}"
    cfg.MODEL.DISTILL.METHODS, cfg.OUTPUT_DIR = csgr_cfg.MODEL.DISTILL.METHODS, csgr_cfg.OUTPUT_DIR
    # a config may also set its own method's keys (e.g. FGD's levels), nothing else; CSGR's
    # config may set its own formulation (read by CSGR only)
    cfg.MODEL.DISTILL[method] = csgr_cfg.MODEL.DISTILL[method].clone()
    cfg.MODEL.DISTILL.CSGR.FORMULATION = csgr_cfg.MODEL.DISTILL.CSGR.FORMULATION
    assert cfg.dump() == csgr_cfg.dump()


PAPER = [
    f"{d}/csgr_{p}_{s}.yaml"
    for d, s in DATASETS.items()
    if d != "Shapes"
    for p in PREFIXES.values()
]


@pytest.mark.parametrize("name", PAPER + ["csgr_frcnn_r50.yaml", "csgr_retinanet_r50.yaml"])
def test_paper_configs_keep_the_published_formulation(name):
    cfg = config_from_file(os.path.join(ROOT, "configs", name))
    assert cfg.MODEL.DISTILL.CSGR.FORMULATION == "published"


@pytest.mark.parametrize(
    "name",
    [
        "Shapes/csgr_frcnn_r18_r34.yaml",
        "Shapes/csgr_frcnn_mnv2_efflite2_pretrained.yaml",
        "Coral/csgr_frcnn_mnv2_efflite2.yaml",
        "Coral/csgr_retinanet_mnv2_efflite2.yaml",
    ],
)
def test_offline_suites_run_the_default(name):
    cfg = config_from_file(os.path.join(ROOT, "configs", name))
    assert cfg.MODEL.DISTILL.CSGR.FORMULATION == "headinit"


@pytest.mark.parametrize("dataset, name, method", CONFIGS)
def test_method_configs_load(dataset, name, method):
    cfg = config_from_file(os.path.join(ROOT, "configs", dataset, name))
    assert list(cfg.MODEL.DISTILL.METHODS) == [method]
    assert cfg.MODEL.META_ARCHITECTURE == "Distiller"
    assert os.path.splitext(f"{dataset}/{name}")[0] in cfg.OUTPUT_DIR

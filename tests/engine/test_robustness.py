"""Bad input: each case is a clear error naming the file, key or shape, or a logged, counted skip.

Bad image files, annotation jsons, bad boxes, images without boxes (every registered method),
config keys, teacher/student pairing and teacher weights, and NaN losses during training.
"""

import json
import logging
import os

import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.engine import default_argument_parser
from detectron2.modeling import build_model
from detectron2.structures import Boxes, BoxMode, Instances
from detectron2.utils.events import EventStorage, get_event_storage
from shapes_runs import one_torch_thread, shapes_distill_cfg, shapes_root  # noqa: F401
from tiny_models import distill_cfg, random_batch, save_teacher, tiny_cfg

from csgr.config.reliability import add_reliability_config
from csgr.data.box_checks import sanitize_boxes
from csgr.data.datasets.catalog_utils import load_coco_checked
from csgr.data.mapper import BadImageError, CheckedDatasetMapper
from csgr.engine import Trainer, setup_cfg
from csgr.engine.nan_guard import NonFiniteLossError
from csgr.errors import UnknownConfigKeyError
from csgr.modeling import DISTILL_LOSS_REGISTRY
from csgr.modeling.losses.csgr import CSGRLoss

# ------------------------------------------------------------------------------ image files


def _bad_images(tmp_path, good_file):
    """Missing, empty, truncated and garbage image files, by kind."""
    data = open(good_file, "rb").read()
    paths = {k: str(tmp_path / f"{k}.jpg") for k in ("missing", "empty", "truncated", "garbage")}
    open(paths["empty"], "wb").close()
    open(paths["truncated"], "wb").write(data[: len(data) // 2])
    open(paths["garbage"], "wb").write(b"this is not an image" * 10)
    return paths


@pytest.fixture
def shapes_dicts(shapes_root, monkeypatch, restore_catalogs):  # noqa: F811
    monkeypatch.setenv("DETECTRON2_DATASETS", str(shapes_root))
    return DatasetCatalog.get("csgr_shapes_train")


def _image_cfg(skip):
    cfg = tiny_cfg(num_classes=8)
    add_reliability_config(cfg)
    cfg.DATALOADER.SKIP_BAD_IMAGES = skip
    return cfg


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated", "garbage"])
def test_bad_image_is_an_error_naming_the_file(tmp_path, shapes_dicts, kind):
    path = _bad_images(tmp_path, shapes_dicts[0]["file_name"])[kind]
    mapper = CheckedDatasetMapper(_image_cfg(skip=False), True)
    expected = {"missing": "does not exist", "empty": "is empty"}.get(kind, "cannot be decoded")
    with pytest.raises(BadImageError, match=expected) as e:
        mapper(dict(shapes_dicts[0], file_name=path))
    assert path in str(e.value)


def _register(name, dicts):
    DatasetCatalog.register(name, lambda: dicts)
    return name


def test_bad_images_skipped_and_counted_in_train_and_test_loaders(tmp_path, shapes_dicts, caplog):
    bad = _bad_images(tmp_path, shapes_dicts[0]["file_name"])
    dicts = [dict(d, file_name=bad[k]) for d, k in zip(shapes_dicts, bad)] + shapes_dicts[4:]
    name = _register("test_robust_bad_images", dicts)
    cfg = _image_cfg(skip=False)
    cfg.DATASETS.TRAIN = (name,)
    with pytest.raises(BadImageError, match=r"Image file '.*\.jpg'"):
        for _ in zip(range(4), Trainer.build_train_loader(cfg)):
            pass

    cfg.DATALOADER.SKIP_BAD_IMAGES = True
    with caplog.at_level(logging.WARNING, logger="csgr.data.mapper"):
        for batch in zip(range(6), Trainer.build_train_loader(cfg)):
            assert all("image" in x for x in batch[1])
        skipped = {
            r.getMessage().split("'")[1]
            for r in caplog.records
            if r.name == "csgr.data.mapper" and "skipped" in r.getMessage()
        }
        assert skipped == set(bad.values())  # 12 images, 12 drawn: each bad one was met
        assert "4 bad image(s) skipped so far" in caplog.text

    outputs = list(Trainer.build_test_loader(cfg, name))
    assert len(outputs) == len(dicts) - len(bad)
    assert not {o[0]["file_name"] for o in outputs} & set(bad.values())


# ------------------------------------------------------------------------- annotation json


def _write_coco(tmp_path, categories, category_ids, text=None):
    path = tmp_path / "instances.json"
    images = [{"id": 1, "file_name": "a.jpg", "height": 10, "width": 10}]
    anns = [
        {"id": i + 1, "image_id": 1, "category_id": c, "bbox": [1, 1, 3, 3], "iscrowd": 0}
        for i, c in enumerate(category_ids)
    ]
    coco = {"images": images, "annotations": anns, "categories": categories}
    path.write_text(text if text is not None else json.dumps(coco))
    return str(path)


def test_annotation_json_errors_name_the_file(tmp_path, restore_catalogs):
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_coco_checked("test_robust_json", str(tmp_path / "missing.json"), str(tmp_path))

    path = _write_coco(tmp_path, cats, [1], text='{"images": [1, 2,, 3]}')
    with pytest.raises(ValueError) as e:
        load_coco_checked("test_robust_json", path, str(tmp_path))
    assert path in str(e.value) and "line 1, column 18 (character 17)" in str(e.value)

    path = _write_coco(tmp_path, cats, [1, 9, 2, 7, 9])
    with pytest.raises(ValueError) as e:
        load_coco_checked("test_robust_json_ids", path, str(tmp_path))
    assert path in str(e.value) and "category ids [7, 9]" in str(e.value)

    path = _write_coco(tmp_path, cats, [1], text=json.dumps({"annotations": [], "images": []}))
    with pytest.raises(ValueError, match="not a COCO instances file") as e:
        load_coco_checked("test_robust_json_keys", path, str(tmp_path))
    assert path in str(e.value)


# ------------------------------------------------------------------------------- bad boxes


def _ann(box, mode=BoxMode.XYWH_ABS):
    return {"bbox": box, "bbox_mode": mode, "category_id": 0, "iscrowd": 0}


def test_bad_boxes_are_clipped_or_dropped_and_counted(caplog):
    good = _ann([10, 10, 20, 20])
    record = {
        "file_name": "img.jpg",
        "height": 100,
        "width": 50,
        "annotations": [
            good,
            _ann([40, -5, 20, 20]),  # beyond the right and top edges: clipped
            _ann([60, 10, 5, 5]),  # entirely right of the image: dropped
            _ann([10, 10, -4, 8]),  # negative width: dropped
            _ann([10, 10, 8, 0]),  # zero height: dropped
            _ann([float("nan"), 1, 2, 2]),  # non-finite: dropped
            _ann([30, 30, 20, 40], BoxMode.XYXY_ABS),  # x1 < x0: dropped
        ],
    }
    all_bad = {"file_name": "bad.jpg", "height": 9, "width": 9, "annotations": [_ann([1, 1, 0, 0])]}
    untouched = {
        "file_name": "ok.jpg",
        "height": 9,
        "width": 9,
        "annotations": [_ann([1, 1, 2, 2])],
    }
    with caplog.at_level(logging.WARNING, logger="csgr.data.box_checks"):
        out, counts = sanitize_boxes([record, all_bad, untouched], ["toy"])
    assert counts == {
        "boxes": 9,
        "clipped": 1,
        "dropped": 6,
        "non-finite": 1,
        "zero or negative width/height": 4,
        "outside image": 1,
        "images_removed": 1,
    }
    assert len(out) == 2 and out[1] is untouched
    assert record["annotations"][1]["bbox"] == [40, -5, 20, 20]  # the input is not modified
    assert out[0]["annotations"][0] is good
    clipped = out[0]["annotations"][1]
    assert clipped["bbox"] == [40.0, 0.0, 50.0, 15.0] and clipped["bbox_mode"] == BoxMode.XYXY_ABS
    assert "1 extend beyond their image and were clipped" in caplog.text
    assert "6 were dropped" in caplog.text and "img.jpg" in caplog.text

    _, counts = sanitize_boxes([all_bad], ["toy"], filter_empty=False)
    assert counts["images_removed"] == 0


# ----------------------------------------------------------- images without boxes, per method


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("teachers"))
    return {arch: save_teacher(tmp, arch)[:2] for arch in ("GeneralizedRCNN", "RetinaNet")}


def _empty_batch():
    batch = random_batch()
    for x in batch:
        x["instances"] = Instances((64, 64), gt_boxes=Boxes(torch.zeros(0, 4)))
        x["instances"].gt_classes = torch.zeros(0, dtype=torch.int64)
    return batch


@pytest.mark.parametrize("method", sorted(name for name, _ in DISTILL_LOSS_REGISTRY))
def test_images_without_boxes_give_finite_losses(tmp_path, teachers, method):
    ran = []
    for arch in ("GeneralizedRCNN", "RetinaNet"):
        cfg = tiny_cfg(arch)
        cfg.MODEL.META_ARCHITECTURE = "Distiller"
        cfg.MODEL.DISTILL.STUDENT_META_ARCHITECTURE = arch
        cfg.MODEL.DISTILL.TEACHER.CONFIG_FILE, cfg.MODEL.DISTILL.TEACHER.WEIGHTS = teachers[arch]
        cfg.MODEL.DISTILL.METHODS = [method]
        try:
            model = build_model(cfg)
        except ValueError as e:  # the method does not apply to this detector type
            assert "RetinaNet" in str(e) or "GeneralizedRCNN" in str(e) or "ROI" in str(e), e
            continue
        model.train()
        with EventStorage(0):
            losses = model(_empty_batch())
        distill = [k for k in losses if k.startswith(f"loss_{method.lower()}")]
        assert distill, sorted(losses)
        for k, v in losses.items():
            assert torch.isfinite(v), (arch, k, v)
        sum(losses.values()).backward()
        for name, p in model.named_parameters():
            assert p.grad is None or torch.isfinite(p.grad).all(), (arch, name)
        ran.append(arch)
    assert ran, f"{method} builds with neither a Faster R-CNN nor a RetinaNet student"


# --------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "body, exc, fragments",
    [
        ("MODEL:\n  DISTILL:\n    CSGR:\n      FOO: 1\n", KeyError, ["MODEL.DISTILL.CSGR.FOO"]),
        ("MODEL:\n  DISTILL:\n    NOPE: 1\n", KeyError, ["MODEL.DISTILL.NOPE"]),
        (
            "MODEL:\n  DISTILL:\n    CSGR:\n      CAT_WEIGHT: abc\n",
            ValueError,
            ["MODEL.DISTILL.CSGR.CAT_WEIGHT", "Type mismatch"],
        ),
        ("MODEL:\n  DISTILL:\n    METHODS: CSGR\n", ValueError, ["MODEL.DISTILL.METHODS"]),
        ("MODEL:\n  DISTILL:\n    ADAPTER: [1]\n", ValueError, ["MODEL.DISTILL.ADAPTER"]),
        ("SOLVER:\n  BASE_LRR: 0.1\n", KeyError, ["SOLVER.BASE_LRR"]),
        ("DATALOADER:\n  SKIP_BAD_IMAGES: 3\n", ValueError, ["DATALOADER.SKIP_BAD_IMAGES"]),
    ],
)
def test_config_unknown_key_or_wrong_type_is_named(tmp_path, body, exc, fragments):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(exc) as e:
        setup_cfg(default_argument_parser().parse_args(["--config-file", str(path)]), False)
    for fragment in fragments:
        assert fragment in str(e.value)


@pytest.mark.parametrize(
    "opts, exc, fragment",
    [
        # yacs asserts that an opt's key exists; load_config names it and the closest key
        (
            ["MODEL.DISTILL.CSGR.CAT_WEIGTH", "1e-3"],
            UnknownConfigKeyError,
            "MODEL.DISTILL.CSGR.CAT_WEIGTH (neither Detectron2 nor CSGR has it); did you mean "
            "MODEL.DISTILL.CSGR.CAT_WEIGHT?",
        ),
        (["MODEL.DISTILL.CSGR.RECURRENCE", "two"], ValueError, "MODEL.DISTILL.CSGR.RECURRENCE"),
    ],
)
def test_config_bad_opts_are_named(tmp_path, opts, exc, fragment):
    path = tmp_path / "ok.yaml"
    path.write_text("MODEL:\n  DISTILL:\n    METHODS: ['CSGR']\n")
    with pytest.raises(exc) as e:
        setup_cfg(default_argument_parser().parse_args(["--config-file", str(path)] + opts), False)
    assert fragment in str(e.value)


# ------------------------------------------------------------------ teacher/student pairing


def test_channel_mismatch_with_adapter_never_names_level_and_widths(tmp_path):
    cfg = distill_cfg(str(tmp_path))  # student FPN 32 channels, teacher 64
    cfg.MODEL.DISTILL.ADAPTER = "never"
    with pytest.raises(ValueError, match=r"level p2: student has 32 channels and teacher 64"):
        build_model(cfg)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_unreadable_teacher_weights_name_the_file(tmp_path, content):
    cfg = distill_cfg(str(tmp_path))
    path = tmp_path / "broken_teacher.pth"
    if content is None:
        torch.save([1, 2, 3], path)  # a valid torch file that is not a checkpoint
    else:
        path.write_bytes(content)
    cfg.MODEL.DISTILL.TEACHER.WEIGHTS = str(path)
    with pytest.raises(ValueError) as e:
        build_model(cfg)
    assert "broken_teacher.pth" in str(e.value) and "MODEL.DISTILL.TEACHER.WEIGHTS" in str(e.value)


# ------------------------------------------------------------------------------ NaN losses


def _train_until_it_stops(
    tmp_path, shapes_root, monkeypatch, patched_forward, device="cpu", amp=""
):
    """Train a 6-iteration CSGR run (checkpoint every 2) on ``device``, with ``amp`` (an AMP
    precision, or "" for none), whose ``CSGRLoss.forward`` is
    ``patched_forward(original_forward, self, batch)``; it must stop with NonFiniteLossError.

    Returns:
        (cfg, trainer, the error's message).
    """
    monkeypatch.setenv("DETECTRON2_DATASETS", str(shapes_root))
    cfg = shapes_distill_cfg(tmp_path, max_iter=6, period=2)
    add_reliability_config(cfg)
    cfg.MODEL.DEVICE = device
    cfg.SOLVER.AMP.ENABLED = bool(amp)
    cfg.SOLVER.AMP.PRECISION = amp or cfg.SOLVER.AMP.PRECISION
    forward = CSGRLoss.forward
    monkeypatch.setattr(
        CSGRLoss, "forward", lambda self, batch: patched_forward(forward, self, batch)
    )
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    with pytest.raises(NonFiniteLossError) as e:
        trainer.train()
    return cfg, trainer, str(e.value)


def _nan_at_iteration_3(forward, self, batch):
    losses = forward(self, batch)
    if get_event_storage().iter == 3:
        losses["loss_csgr_rel"] = losses["loss_csgr_rel"] * float("nan")
    return losses


def _assert_nan_stops_training(tmp_path, shapes_root, monkeypatch, device="cpu", amp=""):
    """A NaN term at iteration 3 stops training before any update uses it: the error names the
    term, the iteration and the last checkpoint, which stays the last one written."""
    cfg, trainer, message = _train_until_it_stops(
        tmp_path, shapes_root, monkeypatch, _nan_at_iteration_3, device, amp
    )
    assert "iteration 3" in message and "loss_csgr_rel=nan" in message
    assert "model_0000001.pth" in message and "loss_csgr_cat=" in message
    out = cfg.OUTPUT_DIR
    assert open(os.path.join(out, "last_checkpoint")).read() == "model_0000001.pth"
    assert not os.path.exists(os.path.join(out, "model_0000003.pth"))
    assert not os.path.exists(os.path.join(out, "model_final.pth"))
    weights = torch.load(os.path.join(out, "model_0000001.pth"), weights_only=False)["model"]
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    # no update used the NaN: the weights in memory are still finite
    for k, v in trainer.model.state_dict().items():
        assert not v.is_floating_point() or torch.isfinite(v).all(), k


def test_nan_loss_stops_training_naming_term_and_iteration(
    tmp_path, shapes_root, monkeypatch, restore_catalogs  # noqa: F811
):
    _assert_nan_stops_training(tmp_path, shapes_root, monkeypatch)


@pytest.mark.cuda
@pytest.mark.parametrize("amp", ["", "float16"], ids=["fp32", "amp-float16"])
def test_nan_loss_stops_training_on_cuda(
    tmp_path, shapes_root, monkeypatch, restore_catalogs, amp  # noqa: F811
):
    """On CUDA too, with float16 AMP as well: the guard stops at the NaN, before the GradScaler
    would silently skip the step."""
    _assert_nan_stops_training(tmp_path, shapes_root, monkeypatch, device="cuda", amp=amp)


def test_nan_message_names_the_term_that_grew():
    from csgr.engine.nan_guard import check_finite_losses

    first = {}
    t = torch.tensor
    check_finite_losses({"loss_cls": t(1.2), "loss_csgr_rel": t(15.0)}, 0, first_values=first)
    check_finite_losses({"loss_cls": t(1.0), "loss_csgr_rel": t(0.0)}, 1, first_values=first)
    assert first == {"loss_cls": (0, pytest.approx(1.2)), "loss_csgr_rel": (0, 15.0)}
    with pytest.raises(NonFiniteLossError) as e:
        check_finite_losses(
            {"loss_cls": t(float("nan")), "loss_csgr_rel": t(1.5e6)}, 44, first_values=first
        )
    message = str(e.value)
    assert "iteration 44" in message and "loss_cls=nan" in message
    assert "Largest growth: loss_csgr_rel from 15 (iteration 0) to 1.5e+06 (x1e+05)" in message
    assert "At the start loss_csgr_rel was 15 (iteration 0), 12.5x the detection terms" in message
    assert "LOSS_SCALE.MODE calibrated" in message
    with pytest.raises(NonFiniteLossError) as e:  # nothing grew tenfold: no growth note
        check_finite_losses(
            {"loss_cls": t(float("inf")), "loss_csgr_rel": t(16.0)}, 45, None, first
        )
    assert "Largest growth" not in str(e.value)
    # the detection terms blew up after a dominant distillation term: both are named
    first = {"loss_cls": (0, 1.0), "loss_box_reg": (0, 0.5), "loss_fgd_global": (0, 66.6)}
    with pytest.raises(NonFiniteLossError) as e:
        check_finite_losses(
            {"loss_cls": t(1e34), "loss_box_reg": t(4e33), "loss_fgd_global": t(float("nan"))},
            24,
            first_values=first,
        )
    message = str(e.value)
    assert "Largest growth: loss_cls from 1 (iteration 0) to 1e+34" in message
    assert "At the start loss_fgd_global was 66.6 (iteration 0), 44.4x the detection" in message


def test_divergence_inside_the_forward_names_the_dominant_term(
    tmp_path, shapes_root, monkeypatch, restore_catalogs  # noqa: F811
):
    """Finite but huge distillation terms can make the weights non-finite; Detectron2 then fails
    inside the next forward. The error names the previous terms and the one that dominated."""

    def diverge_at_iteration_3(forward, self, batch):
        if get_event_storage().iter == 3:
            raise FloatingPointError("Predicted boxes or scores contain Inf/NaN.")
        losses = forward(self, batch)
        losses["loss_csgr_rel"] = losses["loss_csgr_rel"].detach() * 0 + 500.0
        return losses

    _, _, message = _train_until_it_stops(
        tmp_path, shapes_root, monkeypatch, diverge_at_iteration_3
    )
    assert message.startswith("Training diverged at iteration 3: Predicted boxes")
    assert "The step of iteration 2 made the weights non-finite" in message
    assert "loss_csgr_rel=500." in message and "loss_csgr_cat=" in message
    assert "At the start loss_csgr_rel was 500 (iteration 0), " in message
    assert "CLIP_TYPE full_model" in message and "LOSS_SCALE.MODE calibrated" in message
    assert "model_0000001.pth" in message  # the hint: the last checkpoint to resume from


def test_dominant_term_is_a_distillation_term_larger_than_detection():
    from csgr.engine.nan_guard import dominant_term

    det = {"loss_cls": 0.8, "loss_box_reg": 0.2, "loss_rpn_cls": 0.4, "loss_rpn_loc": 0.1}
    found = dominant_term({**det, "loss_fgd_fg": 16.7, "loss_fgd_global": 66.6})
    assert found == ("loss_fgd_global", 66.6, pytest.approx(1.5))
    assert dominant_term({**det, "loss_mse": 1.2}) is None  # smaller than detection together
    assert dominant_term({**det, "loss_mse": float("nan")}) is None
    assert dominant_term({"loss_mse": 3.0}) is None  # no detection terms to compare with

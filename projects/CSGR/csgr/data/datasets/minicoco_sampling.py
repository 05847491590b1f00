"""Class- and size-balanced image subsets of a COCO json (MiniCOCO), used by
datasets/prepare_minicoco.py.

Each image is summarised by its number of (non-crowd) instances per category and per COCO area
range (small < 32^2 <= medium < 96^2 <= large, on the annotation ``area`` as COCOeval does).
The subset is grown greedily: at step k a pool of random unused images is scored and the one
that brings the subset's counts closest (relative L1) to k times the full set's per-image mean
is kept. The subset thus keeps the class proportions, the area-range proportions and the
instances-per-image of the full set, and is fixed by the seed.
"""

from typing import Dict, List, Tuple

import numpy as np

__all__ = ["AREA_RANGES", "image_statistics", "sample_balanced_subset", "subset_statistics"]

# COCOeval's area ranges, in pixels^2 (upper bounds excluded).
AREA_RANGES = {"small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, float("inf"))}


def _area(ann: Dict) -> float:
    if "area" in ann:
        return float(ann["area"])
    return float(ann["bbox"][2] * ann["bbox"][3])


def image_statistics(coco: Dict) -> Tuple[List[int], np.ndarray]:
    """
    Args:
        coco (dict): a COCO instances json.

    Returns:
        tuple: (image ids in json order, (num_images, num_categories + 3) int64 array of
        non-crowd instance counts per category (sorted ids) then per area range).
    """
    image_ids = [img["id"] for img in coco["images"]]
    row = {image_id: i for i, image_id in enumerate(image_ids)}
    col = {cid: j for j, cid in enumerate(sorted(c["id"] for c in coco["categories"]))}
    counts = np.zeros((len(image_ids), len(col) + len(AREA_RANGES)), np.int64)
    for ann in coco["annotations"]:
        if ann.get("iscrowd", 0) or ann["image_id"] not in row:
            continue
        i = row[ann["image_id"]]
        counts[i, col[ann["category_id"]]] += 1
        area = _area(ann)
        for k, (lo, hi) in enumerate(AREA_RANGES.values()):
            if lo <= area < hi:
                counts[i, len(col) + k] += 1
    return image_ids, counts


def subset_statistics(coco: Dict) -> Dict[str, np.ndarray]:
    """
    Returns:
        dict: ``class_fraction`` (num_categories,), ``size_fraction`` (3,) of the non-crowd
        instances, and ``instances_per_image`` (scalar array).
    """
    _, counts = image_statistics(coco)
    total = counts.sum(axis=0).astype(np.float64)
    num_cats = counts.shape[1] - len(AREA_RANGES)
    return {
        "class_fraction": total[:num_cats] / max(total[:num_cats].sum(), 1),
        "size_fraction": total[num_cats:] / max(total[num_cats:].sum(), 1),
        "instances_per_image": np.array(total[:num_cats].sum() / max(len(counts), 1)),
    }


def _greedy(counts: np.ndarray, num_cats: int, num_images: int, seed: int, pool: int):
    rng = np.random.default_rng(seed)
    counts = counts.astype(np.float64)
    mean = counts.mean(axis=0)
    # relative L1: each part (classes, sizes) weighs the same whatever its total
    weight = np.empty_like(mean)
    weight[:num_cats] = 1.0 / max(mean[:num_cats].sum(), 1e-12)
    weight[num_cats:] = 1.0 / max(mean[num_cats:].sum(), 1e-12)
    remaining = rng.permutation(len(counts))
    num_left = len(remaining)
    current = np.zeros_like(mean)
    chosen = []
    for k in range(1, num_images + 1):
        slots = rng.integers(0, num_left, min(pool, num_left))
        cand = counts[remaining[slots]]
        error = (np.abs(current + cand - k * mean) * weight).sum(axis=1)
        best = slots[int(np.argmin(error))]
        chosen.append(int(remaining[best]))
        current += counts[remaining[best]]
        num_left -= 1
        remaining[best], remaining[num_left] = remaining[num_left], remaining[best]
    return chosen


def sample_balanced_subset(coco: Dict, num_images: int, seed: int = 0, pool: int = 64) -> Dict:
    """
    Select ``num_images`` images of a COCO json, keeping its class and size balance.

    Args:
        coco (dict): a COCO instances json (``images``, ``annotations``, ``categories``).
        num_images (int): size of the subset, at most the number of images.
        seed (int): fixes the subset.
        pool (int): random candidates scored per step (larger: closer balance, slower).

    Returns:
        dict: a COCO json with the same ``categories`` (and ``info``/``licenses``), the chosen
        images sorted by id and only their annotations.
    """
    if not 0 < num_images <= len(coco["images"]):
        raise ValueError(
            f"num_images must be in [1, {len(coco['images'])}] (images in the json), "
            f"got {num_images}"
        )
    image_ids, counts = image_statistics(coco)
    num_cats = counts.shape[1] - len(AREA_RANGES)
    keep = {image_ids[i] for i in _greedy(counts, num_cats, num_images, seed, pool)}
    subset = {k: v for k, v in coco.items() if k not in ("images", "annotations")}
    subset["info"] = dict(
        coco.get("info", {}), minicoco={"num_images": num_images, "seed": seed, "pool": pool}
    )
    subset["images"] = sorted(
        (im for im in coco["images"] if im["id"] in keep), key=lambda x: x["id"]
    )
    subset["annotations"] = [a for a in coco["annotations"] if a["image_id"] in keep]
    return subset

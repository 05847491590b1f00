#!/usr/bin/env python
"""Make Detectron2 importable by the running interpreter, without committing its code.

Resolution order (docs/install.md, "Detectron2"):

1. A Detectron2 that this interpreter can already import (for example a user's own CUDA build
   from the official source, visible through ``--system-site-packages``) is used as is.
2. ``$CSGR_DETECTRON2_SOURCE``, a local checkout or any pip requirement such as
   ``git+https://github.com/facebookresearch/detectron2.git``, is installed with pip.
3. Otherwise the pure-Python part of PyPI's ``sal-detectron2==0.7.2`` (a redistribution of
   upstream Detectron2 main) is installed. Its wheel is tagged cp310 and carries a compiled
   ``detectron2/_C`` for CPython 3.10 only; we drop ``_C`` and re-tag the wheel ``py3-none-any``
   so that pip installs (and can uninstall) it for any Python 3. Without ``_C`` Detectron2 lacks
   its deformable/rotated-box ops and the fast C++ COCO evaluator; CSGR needs neither.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

FALLBACK = "sal-detectron2==0.7.2"


def _pip(*args):
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.check_call(cmd)


def _importable():
    """Return the path of an importable Detectron2, or None."""
    code = "import detectron2, os; print(os.path.dirname(detectron2.__file__))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def _fallback_installed():
    res = subprocess.run(
        [sys.executable, "-m", "pip", "show", "sal-detectron2"], capture_output=True, text=True
    )
    return res.returncode == 0


def _install_fallback():
    with tempfile.TemporaryDirectory() as tmp:
        _pip(
            "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.10",
            "--platform", "manylinux2014_x86_64", "--platform", "linux_x86_64",
            "-d", tmp, FALLBACK,
        )  # fmt: skip
        wheels = glob.glob(os.path.join(tmp, "*.whl"))
        if len(wheels) != 1:
            raise RuntimeError(f"expected one wheel for {FALLBACK} in {tmp}, found {wheels}")
        unpacked = os.path.join(tmp, "unpacked")
        subprocess.check_call([sys.executable, "-m", "wheel", "unpack", "-d", unpacked, wheels[0]])
        (root,) = glob.glob(os.path.join(unpacked, "*"))
        for so in glob.glob(os.path.join(root, "detectron2", "_C*")):
            os.remove(so)
        (wheel_meta,) = glob.glob(os.path.join(root, "*.dist-info", "WHEEL"))
        with open(wheel_meta) as f:
            lines = [("Tag: py3-none-any\n" if ln.startswith("Tag:") else ln) for ln in f]
        with open(wheel_meta, "w") as f:
            f.writelines(lines)
        packed = os.path.join(tmp, "packed")
        os.makedirs(packed)
        subprocess.check_call([sys.executable, "-m", "wheel", "pack", "-d", packed, root])
        _pip("install", "-q", "--no-deps", "--force-reinstall", *glob.glob(f"{packed}/*.whl"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--source",
        default=os.environ.get("CSGR_DETECTRON2_SOURCE", ""),
        help="local Detectron2 checkout or pip requirement (default: $CSGR_DETECTRON2_SOURCE)",
    )
    args = parser.parse_args()

    if args.source:
        if _fallback_installed():
            _pip("uninstall", "-y", "-q", "sal-detectron2")
        if os.path.isdir(args.source):
            _pip("install", "--no-build-isolation", "-e", args.source)
        else:
            _pip("install", "--no-build-isolation", args.source)
    elif _importable():
        print(f"Detectron2: using the one already importable at {_importable()}")
        return
    else:
        _install_fallback()
    path = _importable()
    if path is None:
        sys.exit("Detectron2 could not be imported after installation; see the messages above.")
    print(f"Detectron2: installed at {path}")


if __name__ == "__main__":
    main()

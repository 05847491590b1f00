"""Installs `csgr`, the CSGR knowledge-distillation extension for Detectron2.

The code lives under projects/CSGR, as for Detectron2's own projects. Dependencies are pinned in
requirements.txt and installed by tools/bootstrap.sh; Detectron2 is resolved by
tools/install_detectron2.py, so it is deliberately not listed in install_requires.
"""

from setuptools import find_packages, setup

setup(
    name="csgr",
    version="0.1.0",
    description="Category Semantic and Global Relation distillation for Detectron2 detectors",
    package_dir={"": "projects/CSGR"},
    packages=find_packages("projects/CSGR"),
    python_requires=">=3.9",
    install_requires=["torch>=2.0", "fvcore", "pycocotools", "opencv-python-headless"],
)

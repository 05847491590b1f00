"""Provenance of a GPU check: the benchmarks' provenance (:mod:`.provenance`: command, commit,
machine, date) plus the GPU, the NVIDIA driver and the library versions.

The driver version comes from ``nvidia-smi`` when it is installed, else from
``/proc/driver/nvidia/version``, else the CUDA driver API version of ``libcuda``.
"""

import ctypes
import os
import platform
import shutil
import subprocess
from typing import Dict, Optional

from . import provenance as benchmark_provenance

__all__ = ["gpu_check_provenance", "driver_version"]


def _libcuda_version() -> Optional[str]:
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    version = ctypes.c_int()
    if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return None
    return f"CUDA driver API {version.value // 1000}.{version.value % 1000 // 10}"


def _nvidia_smi() -> Optional[str]:
    if not shutil.which("nvidia-smi"):
        return None
    cmd = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def driver_version() -> Optional[str]:
    """The NVIDIA driver version (e.g. "550.54.15"), or None without a driver."""
    found = _nvidia_smi()
    if found:
        return found
    try:
        with open("/proc/driver/nvidia/version") as f:
            words = f.readline().split()
    except OSError:
        return _libcuda_version()
    versions = [w for w in words if w[:1].isdigit() and "." in w]
    return versions[0] if versions else _libcuda_version()


def gpu_check_provenance(root: str, device: str, command: str) -> Dict[str, object]:
    """What ran the check, for the results file.

    Returns:
        dict: command, commit, machine, date (:func:`.provenance.provenance`); python, torch,
        cuda (the version torch was built with), cudnn, detectron2, cpu, cpu_count, gpu_count,
        driver (None without an NVIDIA driver), device ("cpu" or the name of GPU 0),
        tf32_cudnn and tf32_matmul (whether float32 convolutions and matmuls may use TF32) and,
        on CUDA, gpu_memory_gib and capability.
    """
    import detectron2
    import torch

    info = benchmark_provenance.provenance(
        root,
        command,
        python=platform.python_version(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        detectron2=detectron2.__version__,
        cpu=benchmark_provenance.cpu_model(),
        cpu_count=os.cpu_count(),
        gpu_count=torch.cuda.device_count() if torch.cuda.is_available() else 0,
        driver=driver_version(),
        device="cpu",
        # what "fp32" means on a GPU: PyTorch's defaults, which every part keeps
        tf32_cudnn=torch.backends.cudnn.allow_tf32,
        tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
    )
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["device"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["capability"] = f"{props.major}.{props.minor}"
    return info

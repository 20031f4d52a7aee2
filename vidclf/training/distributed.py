"""torchrun / DistributedDataParallel plumbing, and nothing else.

``torchrun --nproc_per_node=N train_cli.py train ...`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
:func:`init` joins the process group (``nccl`` on GPUs, ``gloo`` on CPUs). Without torchrun everything here
is a no-op for a single process, so the training loop has one code path.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as torch_dist

from vidclf.runtime import Dist, all_sum, barrier

__all__ = ["Dist", "all_sum", "barrier", "device_for", "init", "shutdown"]


def init(device: str = "auto") -> Dist:
    """Join the process group when launched by torchrun; a single-process :class:`Dist` otherwise."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(rank, world, local_rank)


def device_for(dist: Dist, name: str) -> str:
    """Each rank takes its own GPU."""
    if dist.active and name in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{dist.local_rank}"
    return name


def shutdown(dist: Dist) -> None:
    if dist.active and torch_dist.is_initialized():
        torch_dist.destroy_process_group()

"""What training, evaluation and prediction all use: the device, autocast, data loaders, batched logits,
and the sums over processes of a distributed run (a single process is the one-rank case)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sized
from typing import cast
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from vidclf.errors import ConfigError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints, logs and progress bars."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but no CUDA GPU is available; use --device cpu")
    return device


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for ``precision="bf16"`` (and ``"auto"`` where the hardware has bf16), nothing for ``"fp32"``."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


_threads_lock = threading.Lock()
_threads_users = 0
_threads_default = 0


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run this thread's torch operations on ``n`` threads, the rest of the process as it was.

    ``torch.set_num_threads`` sets the calling thread's OpenMP (and MKL) thread count, but also the count every
    thread takes when it first runs torch; the second is put back when the last user leaves. A thread that
    first runs torch while one is inside starts with ``n``: a request's own thread should run torch (even
    ``torch.get_num_threads()``) before it starts one that enters here."""
    global _threads_users, _threads_default
    with _threads_lock:
        if _threads_users == 0:
            _threads_default = torch.get_num_threads()
        _threads_users += 1
        torch.set_num_threads(n)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_default)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    num_workers: int,
    device: torch.device,
    seed: int,
    dist: Dist = Dist(),
) -> DataLoader:
    """Training (``shuffle=True``): a DistributedSampler even in one process, so that N processes with
    ``batch_size / N`` each see exactly the global batches one process sees. Evaluation: rank ``r`` takes
    clips ``r, r + N, ...``, so every clip is counted exactly once (no padding)."""
    if shuffle:
        if batch_size % dist.world:
            raise ConfigError(f"batch_size {batch_size} must be a multiple of the {dist.world} processes")
        sampler: DistributedSampler | list[int] = DistributedSampler(
            dataset, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=seed
        )
        per_rank = batch_size // dist.world
    else:
        sampler, per_rank = list(range(dist.rank, len(cast(Sized, dataset)), dist.world)), batch_size
    return DataLoader(
        dataset,
        batch_size=per_rank,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
    )


@torch.inference_mode()
def collect_logits(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    precision: str,
    show_progress: bool = False,
    features: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``[N, K]`` (fp32, on CPU) and labels ``[N]`` for every clip (or feature sequence) of ``loader``."""
    model.eval()
    all_logits, all_labels = [], []
    # disable=None: no bar where stderr is not a terminal
    for clips, labels in tqdm(loader, desc="evaluating", disable=None if show_progress else True, leave=False):
        with autocast(device, precision):
            logits = model(clips.to(device), features=features)
        all_logits.append(logits.float().cpu())
        all_labels.append(labels)
    return torch.cat(all_logits), torch.cat(all_labels)


def all_sum(values: list[float], dist: Dist, device: torch.device | None = None) -> list[float]:
    """Element-wise sum of ``values`` over all ranks. ``device`` is the rank's own: NCCL reduces only
    tensors on the GPU, gloo only on the CPU."""
    if not dist.active:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch_dist.all_reduce(t)
    return t.tolist()


def barrier(dist: Dist) -> None:
    if dist.active:
        torch_dist.barrier()


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"``: bf16 where the hardware runs it natively (a GPU, or a CPU with bf16 units), else fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16"
    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"

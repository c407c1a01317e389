"""Data-parallel training across processes launched by torchrun (torch.distributed.run).

The worker is distributed when torchrun's environment says so (WORLD_SIZE > 1): every rank runs
the same loop on its share of each global batch; rank 0 alone reports events, writes checkpoints
and exports. Backend: NCCL on CUDA, gloo on CPU. With one process this is a no-op object, so the
loop has one code path.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from typing import Any, List, Sequence

import torch
import torch.distributed as dist


_kept: List[Any] = []


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---- lifecycle

    def init(self, device: torch.device, timeout_s: float = 1800.0) -> str:
        """Joins the process group (torchrun's MASTER_ADDR/PORT rendezvous); returns the backend."""
        if not self.enabled:
            return "none"
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=_dt.timedelta(seconds=timeout_s))
        return backend

    def keep(self, *objects: Any) -> None:
        """Holds the process group's users (DDP) until the process exits, instead of destroying them:
        in torch 1.13 freeing the last reference to a gloo group joins its worker threads while
        holding the GIL, and a worker thread freeing a tensor waits for the GIL — a deadlock seen
        after `finished`. The CLI ends a distributed worker with os._exit (see __main__)."""
        if self.enabled:
            _kept.extend(objects)

    # ---- collectives (identity with one process)

    def _device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) \
            if dist.is_initialized() and dist.get_backend() == "nccl" else torch.device("cpu")

    def all_sum(self, values: Sequence[float]) -> List[float]:
        """Element-wise sum of `values` over every rank (float64)."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64, device=self._device())
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu().tolist()

    def agree(self, flag: bool) -> bool:
        """True on every rank when it is true on any rank (e.g. a cancel request seen by one)."""
        return self.all_sum([1.0 if flag else 0.0])[0] > 0

    def gather_rows(self, local: torch.Tensor) -> torch.Tensor:
        """Concatenates each rank's 1-D CPU tensor in rank order (lengths may differ by rank)."""
        if not self.enabled:
            return local
        dev = self._device()
        n = torch.tensor([local.numel()], dtype=torch.int64, device=dev)
        sizes = [torch.zeros_like(n) for _ in range(self.world)]
        dist.all_gather(sizes, n)
        lengths = [int(s.item()) for s in sizes]
        longest = max(lengths)
        padded = torch.zeros(longest, dtype=local.dtype, device=dev)
        padded[:local.numel()] = local.to(dev)
        parts = [torch.zeros_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        return torch.cat([p[:k].cpu() for p, k in zip(parts, lengths)])

    def gather_objects(self, obj: Any) -> List[Any]:
        if not self.enabled:
            return [obj]
        out: List[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def broadcast_buffers(self, module: torch.nn.Module) -> None:
        """Makes every rank's BatchNorm statistics rank 0's, so evaluation and checkpoints agree."""
        if not self.enabled:
            return
        for b in module.buffers():
            dist.broadcast(b, src=0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    # ---- sharding

    def shard(self, n: int) -> slice:
        """This rank's contiguous part of n rows (evaluation); concatenated in rank order it is 0..n."""
        per, extra = divmod(n, self.world)
        start = self.rank * per + min(self.rank, extra)
        return slice(start, start + per + (1 if self.rank < extra else 0))

    def rows_of(self, batch: int) -> torch.Tensor:
        """Positions of this rank's samples inside a global batch: DistributedSampler's rule
        (rank r takes every world-th index from r), applied to each global batch."""
        return torch.arange(self.rank, batch, self.world)


def from_env() -> Dist:
    """torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; a plain `python -m trainer` has none."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Dist()
    return Dist(rank=int(os.environ["RANK"]), world=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))

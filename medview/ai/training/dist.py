"""This process's place in a `torchrun` group: rank, world size, its device, and the few
collective steps the engine needs (stop together, wait while rank 0 writes a cache). Without
torchrun it is rank 0 of 1 and every call is free. gloo on the CPU, nccl on CUDA."""

from __future__ import annotations

import os


class Dist:
    """This process's place in a torchrun group (rank 0 of 1 without torchrun)."""

    def __init__(self, preference: str) -> None:
        import torch

        from medview.ai.runtime.device import choose_device

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = choose_device(preference)
        if self.world > 1:
            import torch.distributed as dist

            if self.device.type == "cuda":
                local = int(os.environ.get("LOCAL_RANK", "0"))
                torch.cuda.set_device(local)
                self.device = torch.device("cuda", local)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    def any(self, flag: bool) -> bool:
        """True when the flag is set in any process (stop, early stop: all end together)."""
        if self.world == 1:
            return flag
        import torch
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def broadcast(self, value: float) -> float:
        """Rank 0's value in every process (the validation Dice that early stopping reads)."""
        if self.world == 1:
            return float(value)
        import torch
        import torch.distributed as dist

        t = torch.tensor([float(value)], device=self.device)
        dist.broadcast(t, 0)
        return float(t.item())

    def first_rank_first(self, before: bool) -> None:
        """Around work whose result is cached on disk: rank 0 does it while the others wait
        (call with before=True ahead of it, before=False after it), then they read it."""
        if self.world > 1 and (self.rank != 0) == before:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

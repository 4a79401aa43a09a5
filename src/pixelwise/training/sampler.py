"""Which training images each process sees in an epoch, and in what order.

>>> shares = [EpochSampler(10, seed=1, rank=r, world=2) for r in range(2)]
>>> for s in shares:
...     s.set_epoch(3)
>>> sorted(i for s in shares for i in s) == list(range(10))
True
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    """Seeded shuffling, the same for a given (seed, epoch), sharded across processes.

    Every process gets the same number of samples (DDP needs equal step counts); ``skip`` drops the
    first samples of this process's share, which is how a resumed run re-enters an epoch mid-way.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def _share(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        per_rank = self.size // self.world
        return order[self.rank :: self.world][:per_rank]

    def __iter__(self) -> Iterator[int]:
        return iter(self._share()[self.skip :])

    def __len__(self) -> int:
        return max(self.size // self.world - self.skip, 0)

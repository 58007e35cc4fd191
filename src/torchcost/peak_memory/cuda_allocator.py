"""PyTorch's CUDA caching allocator, replayed on a run's allocations: the block each allocation gets, and so
what ``torch.cuda.memory_allocated()`` and ``torch.cuda.memory_reserved()`` say after every op.

The rules are ``DeviceCachingAllocator``'s in ``c10/cuda/CUDACachingAllocator.cpp``, with the constants of
``c10/core/AllocatorConfig.h`` (torch 2.14.1), in the default configuration (no ``PYTORCH_CUDA_ALLOC_CONF``:
no ``max_split_size_mb``, no ``roundup_power2_divisions``, no expandable segments) and one stream:

- ``round_size``: a request is rounded up to a multiple of 512 bytes (``kMinBlockSize``); a request of 0 bytes
  gets no block.
- ``get_pool``: a rounded request of at most 1 MiB (``kSmallSize``) is served by the small pool, any other by
  the large pool; a pool only ever hands out its own blocks.
- ``get_free_block``: the smallest cached free block of the pool that is large enough; among equal sizes, the
  lowest address (``BlockComparatorSize``).
- ``get_allocation_size``: when none is, a new segment (``cudaMalloc``) of 2 MiB (``kSmallBuffer``) for a small
  request, 20 MiB (``kLargeBuffer``) for one under 10 MiB (``kMinLargeAlloc``), else the request rounded up to
  2 MiB (``kRoundLarge``).
- ``should_split``: the block is split, the rest staying cached, when the rest is at least 512 bytes (small
  pool) or more than 1 MiB (large pool); otherwise the whole block is handed out, and ``allocated_bytes``
  counts all of it (``alloc_found_block`` adds ``block->size``).
- ``free_block``: a freed block merges with the free blocks beside it in its segment (``try_merge_blocks``).
- Segments are returned to CUDA only by ``empty_cache()`` or on an out-of-memory retry, neither of which a
  run that fits makes: reserved bytes only grow.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from torchcost.peak_memory.tracker import Lifetimes

MIN_BLOCK = 512  # kMinBlockSize
SMALL_SIZE = 1 << 20  # kSmallSize: the largest request of the small pool
SMALL_SEGMENT = 2 << 20  # kSmallBuffer
LARGE_SEGMENT = 20 << 20  # kLargeBuffer (large_segment_size)
MIN_LARGE_ALLOC = 10 << 20  # kMinLargeAlloc
ROUND_LARGE = 2 << 20  # kRoundLarge


def round_size(nbytes: int) -> int:
    """The request as the allocator sizes it: a multiple of 512 bytes, at least 512."""
    return max(MIN_BLOCK, math.ceil(nbytes / MIN_BLOCK) * MIN_BLOCK)


def segment_size(size: int) -> int:
    """Bytes of the segment ``cudaMalloc`` gets for a rounded request no cached block can serve."""
    if size <= SMALL_SIZE:
        return SMALL_SEGMENT
    if size < MIN_LARGE_ALLOC:
        return LARGE_SEGMENT
    return math.ceil(size / ROUND_LARGE) * ROUND_LARGE


def should_split(block_size: int, size: int, small: bool) -> bool:
    """Whether a block of ``block_size`` bytes serving a rounded request of ``size`` bytes is split."""
    remaining = block_size - size
    return remaining >= MIN_BLOCK if small else remaining > SMALL_SIZE


@dataclass(eq=False)
class Block:
    """A piece of a segment, handed out (``allocated``) or cached; ``before``/``after`` are its neighbours in
    the segment."""

    address: int
    size: int
    small: bool
    before: Block | None = None
    after: Block | None = None
    allocated: bool = False


class CachingAllocator:
    """The allocator's state: segments cut into blocks, and the cached free blocks of each pool."""

    def __init__(self) -> None:
        self._free: dict[bool, list[tuple[int, int]]] = {True: [], False: []}  # small? -> sorted (size, address)
        self._cached: dict[int, Block] = {}  # address -> free block
        self._end = 0  # the next segment's address
        self.allocated = 0  # bytes of the blocks handed out (memory_allocated)
        self.reserved = 0  # bytes of all segments (memory_reserved)

    def malloc(self, nbytes: int) -> Block | None:
        """The block a request of ``nbytes`` bytes gets (None for 0 bytes)."""
        if nbytes == 0:
            return None
        size = round_size(nbytes)
        small = size <= SMALL_SIZE
        pool = self._free[small]
        index = bisect.bisect_left(pool, (size, -1))
        if index < len(pool):
            block = self._cached.pop(pool.pop(index)[1])
        else:
            block = Block(self._end, segment_size(size), small)
            self._end += block.size
            self.reserved += block.size
        if should_split(block.size, size, small):
            rest = Block(block.address + size, block.size - size, small, before=block, after=block.after)
            if block.after is not None:
                block.after.before = rest
            block.after, block.size = rest, size
            self._cache(rest)
        block.allocated = True
        self.allocated += block.size
        return block

    def free(self, block: Block) -> None:
        """Give ``block`` back: cached, merged with free neighbours."""
        block.allocated = False
        self.allocated -= block.size
        before, after = block.before, block.after
        if before is not None and not before.allocated:
            self._uncache(before)
            block.address, block.size, block.before = before.address, before.size + block.size, before.before
            if block.before is not None:
                block.before.after = block
        if after is not None and not after.allocated:
            self._uncache(after)
            block.size, block.after = block.size + after.size, after.after
            if block.after is not None:
                block.after.before = block
        self._cache(block)

    def _cache(self, block: Block) -> None:
        bisect.insort(self._free[block.small], (block.size, block.address))
        self._cached[block.address] = block

    def _uncache(self, block: Block) -> None:
        pool = self._free[block.small]
        del pool[bisect.bisect_left(pool, (block.size, block.address))]
        del self._cached[block.address]


@dataclass(frozen=True)
class Replayed:
    """A steady-state step replayed through the allocator: each storage's block bytes, each op's workspace
    block bytes, and the bytes reserved at the end (the most the step reserves)."""

    blocks: list[int]
    workspaces: list[int]
    reserved: int


def replay(seen: Lifetimes, warmups: int = 1) -> Replayed:
    """Replay the allocations and frees of a tracked step ``warmups + 1`` times on one allocator, as a training
    loop repeats it, and read the last: the storages that exist before the step are allocated once, first;
    what the step makes and still holds at its end (gradients, outputs) is freed before the next one. Within
    an op, its outputs are allocated, then its kernel's workspace, which is freed as the op ends."""
    lives = seen.lives
    born: dict[int, list[int]] = {}
    dies: dict[int, list[int]] = {}
    for index, life in enumerate(lives):
        born.setdefault(life.born, []).append(index)
        if life.died is not None:
            dies.setdefault(life.died, []).append(index)
    allocator = CachingAllocator()
    held: dict[int, Block | None] = {}
    blocks = [0] * len(lives)
    workspaces = [0] * len(seen.steps)

    def take(index: int) -> None:
        block = held[index] = allocator.malloc(lives[index].nbytes)
        blocks[index] = 0 if block is None else block.size

    def give(index: int) -> None:
        block = held.pop(index, None)
        if block is not None:
            allocator.free(block)

    for _ in range(warmups + 1):
        for index in born.get(0, []):
            if index not in held:
                take(index)
        for step, call in enumerate(seen.steps, start=1):
            for index in dies.get(step, []):
                give(index)
            for index in born.get(step, []):
                take(index)
            workspace = allocator.malloc(call.workspace)
            if workspace is not None:
                workspaces[step - 1] = workspace.size
                allocator.free(workspace)
        for index in dies.get(len(seen.steps) + 1, []):
            give(index)
        reserved = allocator.reserved
        for index in [index for index in held if lives[index].born > 0]:
            give(index)
    return Replayed(blocks, workspaces, reserved)

"""The CUDA caching allocator's rules, replayed: each case worked out by hand from the rules quoted in
peak_memory/cuda_allocator.py (c10/cuda/CUDACachingAllocator.cpp)."""

import pytest

from torchcost.peak_memory.cuda_allocator import CachingAllocator, replay, round_size, segment_size
from torchcost.peak_memory.cuda_libraries import cublas_workspace_bytes
from torchcost.peak_memory.tracker import Life, Lifetimes, Step

KIB, MIB = 1024, 1024 * 1024


@pytest.mark.parametrize(("nbytes", "rounded"), [(1, 512), (512, 512), (513, 1024), (4 * MIB + 1, 4 * MIB + 512)])
def test_requests_round_up_to_512_bytes(nbytes, rounded):
    assert round_size(nbytes) == rounded


@pytest.mark.parametrize(
    ("size", "segment"),
    [
        (512, 2 * MIB),  # small pool: 2 MiB segments
        (MIB, 2 * MIB),  # 1 MiB is still small
        (MIB + 512, 20 * MIB),  # large, under 10 MiB: a 20 MiB segment
        (10 * MIB - 512, 20 * MIB),
        (10 * MIB, 10 * MIB),  # from 10 MiB: rounded up to 2 MiB
        (10 * MIB + 512, 12 * MIB),
    ],
)
def test_segment_sizes(size, segment):
    assert segment_size(size) == segment


def test_zero_bytes_take_no_block():
    allocator = CachingAllocator()
    assert allocator.malloc(0) is None and allocator.reserved == 0


def test_small_requests_share_a_2_mib_segment():
    allocator = CachingAllocator()
    first, second = allocator.malloc(1000), allocator.malloc(100)
    assert first is not None and second is not None
    assert (first.size, second.size) == (1024, 512)  # split: the rest (>= 512 bytes) stays cached
    assert second.address == first.address + 1024  # cut from the same segment
    assert allocator.allocated == 1024 + 512 and allocator.reserved == 2 * MIB


def test_a_large_block_is_not_split_when_the_rest_is_at_most_1_mib():
    allocator = CachingAllocator()
    block = allocator.malloc(11 * MIB + 1)  # rounded 11 MiB + 512 -> a 12 MiB segment; rest 1 MiB - 512: kept whole
    assert block is not None and block.size == 12 * MIB
    assert allocator.allocated == 12 * MIB  # memory_allocated() counts the whole block
    allocator.malloc(3 * MIB)  # a 20 MiB segment, split: the rest, 17 MiB, is more than 1 MiB
    assert allocator.allocated == 15 * MIB and allocator.reserved == 32 * MIB
    block = allocator.malloc(16 * MIB + 512 * KIB)  # fits the cached 17 MiB; rest 512 KiB: not split
    assert block is not None and block.size == 17 * MIB
    assert allocator.allocated == 32 * MIB and allocator.reserved == 32 * MIB  # no new segment


def test_the_smallest_cached_block_that_fits_is_used():
    allocator = CachingAllocator()
    big, small = allocator.malloc(30 * MIB), allocator.malloc(12 * MIB)
    assert big is not None and small is not None
    allocator.free(big)
    allocator.free(small)
    block = allocator.malloc(11 * MIB)  # both fit; the 12 MiB block is the smaller (rest 1 MiB: not split)
    assert block is not None and (block.address, block.size) == (small.address, 12 * MIB)
    assert allocator.reserved == 42 * MIB


def test_freed_neighbours_merge():
    allocator = CachingAllocator()
    a, b, c = (allocator.malloc(3 * MIB) for _ in range(3))  # one 20 MiB segment: 3 + 3 + 3, rest 11 MiB
    assert a is not None and b is not None and c is not None
    allocator.free(a)
    allocator.free(b)  # merges with a: one free 6 MiB block at a's address
    block = allocator.malloc(5 * MIB)  # fits the 6 MiB block (smaller than the 11 MiB rest); rest 1 MiB: whole
    assert block is not None and (block.address, block.size) == (a.address, 6 * MIB)
    allocator.free(block)
    allocator.free(c)  # everything free again: one 20 MiB block
    block = allocator.malloc(19 * MIB)
    assert block is not None and block.size == 20 * MIB and allocator.reserved == 20 * MIB


def test_reserved_never_shrinks():
    allocator = CachingAllocator()
    blocks = [allocator.malloc(40 * MIB) for _ in range(3)]
    for block in blocks:
        assert block is not None
        allocator.free(block)
    assert allocator.allocated == 0 and allocator.reserved == 120 * MIB


def test_replay_reads_a_steady_state_step():
    # a parameter (3 MiB) exists before the step; op 1 makes a 3 MiB activation, op 2 a 1.5 MiB one and frees
    # the first; op 3 holds a 12 MiB kernel workspace; the second activation is alive at the end.
    seen = Lifetimes(
        steps=[Step("aten.a", "forward", ()), Step("aten.b", "forward", ()), Step("aten.c", "forward", (), 12 * MIB)],
        lives=[
            Life(3 * MIB, 0, "start", (), "parameters"),
            Life(3 * MIB, 1, "forward", (), None, died=3),
            Life(3 * MIB // 2, 2, "forward", ()),
        ],
    )
    replayed = replay(seen)
    # first pass: parameter and activation 1 split a 20 MiB segment (14 MiB rest); activation 2 takes 1.5 MiB of
    # the rest (12.5 MiB rest); the 12 MiB workspace fits it and is not split (rest 512 KiB): 12.5 MiB; the end
    # frees activation 2, which merges back. Second pass, the same: the blocks repeat, no new segment.
    assert replayed.blocks == [3 * MIB, 3 * MIB, 3 * MIB // 2]
    assert replayed.workspaces == [0, 0, 12 * MIB + 512 * KIB]
    assert replayed.reserved == 20 * MIB


@pytest.mark.parametrize(
    ("capability", "config", "nbytes"),
    [
        ((9, 0), "", 32 * MIB),  # :4096:8
        ((12, 0), "", 32 * MIB),
        ((8, 0), "", 2 * 4096 * KIB + 8 * 16 * KIB),  # :4096:2:16:8
        (None, "", 32 * MIB),  # unknown: the larger default
        ((9, 0), ":16:8", 8 * 16 * KIB),
        ((8, 6), ":4096:2:16:8", 2 * 4096 * KIB + 8 * 16 * KIB),
        ((9, 0), "nonsense", 32 * MIB),  # PyTorch warns and keeps the default
    ],
)
def test_cublas_workspace_size(capability, config, nbytes):
    assert cublas_workspace_bytes(capability, config) == nbytes

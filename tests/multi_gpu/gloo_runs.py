"""Real training steps of the Megatron-style GPT (megatron_gpt.py) on 2 CPU processes joined by gloo, with every
collective's buffer recorded: data parallel (DDP), tensor parallel (DTensor's column/row plan) and FSDP2. What
``torch.distributed`` really sends, for test_collective_volumes.py to hold torchcost's estimates against."""

import json
import os
import sys

import torch
import torch.distributed as dist
from torch.utils._python_dispatch import TorchDispatchMode

from tests.multi_gpu.megatron_gpt import GPT

VOCAB, HIDDEN, HEADS, LAYERS, SEQ, BATCH = 64, 32, 4, 2, 16, 2
# (namespace, op) -> torchcost's name for the collective, and the argument holding the whole buffer
WHOLE_BUFFER = {
    ("c10d", "allreduce_"): ("all_reduce", lambda args: args[0][0]),
    ("c10d", "_allgather_base_"): ("all_gather", lambda args: args[0]),  # the output
    ("c10d", "_reduce_scatter_base_"): ("reduce_scatter", lambda args: args[1]),  # the input
    ("_c10d_functional", "all_reduce"): ("all_reduce", lambda args: args[0]),
}


class Collectives(TorchDispatchMode):
    """Records (kind, bytes of the whole buffer) of each collective dispatched."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        known = WHOLE_BUFFER.get((func.namespace, func._overloadpacket.__name__))
        if known is not None:
            kind, whole = known[0], known[1](args)
            self.seen.append((kind, whole.numel() * whole.element_size()))
        return func(*args, **(kwargs or {}))


def model() -> GPT:
    torch.manual_seed(0)
    return GPT(VOCAB, HIDDEN, HEADS, LAYERS, SEQ)


def step(net: torch.nn.Module, record: Collectives | None = None) -> None:
    ids = torch.randint(0, VOCAB, (BATCH, SEQ))
    if record is None:
        net(ids, labels=ids).backward()
        return
    with record:
        net(ids, labels=ids).backward()


def data_parallel() -> list[tuple[str, int]]:
    sizes: list[tuple[str, int]] = []

    def hook(state, bucket):  # DDP's reducer calls the process group from C++: read its buckets here
        buffer = bucket.buffer()
        sizes.append(("all_reduce", buffer.numel() * buffer.element_size()))
        return dist.all_reduce(buffer, async_op=True).get_future().then(lambda fut: fut.value()[0] / 2)

    net = torch.nn.parallel.DistributedDataParallel(model())
    net.register_comm_hook(None, hook)
    step(net)
    return sizes


def tensor_parallel() -> list[tuple[str, int]]:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    net = model()
    mesh = init_device_mesh("cpu", (2,))
    for layer in net.layers:  # Megatron's plan; each rank takes half the heads
        plan = {
            "self_attention.query_key_value": ColwiseParallel(),
            "self_attention.dense": RowwiseParallel(),
            "mlp.dense_h_to_4h": ColwiseParallel(),
            "mlp.dense_4h_to_h": RowwiseParallel(),
        }
        parallelize_module(layer, mesh, plan)
        layer.self_attention.num_heads //= 2
    record = Collectives()
    step(net, record)
    return record.seen


def fully_sharded() -> list[tuple[str, int]]:
    from torch.distributed.fsdp import fully_shard

    net = model()
    for layer in net.layers:
        fully_shard(layer)
    fully_shard(net)
    record = Collectives()
    step(net, record)
    return record.seen


def main(rank: int, port: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    found = {"dp": data_parallel(), "tp": tensor_parallel(), "fsdp": fully_sharded()}
    dist.barrier()
    if rank == 0:
        with open(out, "w") as file:
            json.dump(found, file)
    # leave without tearing the process group down: gloo's threads can abort a process that exits beside them
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])

"""The peak memory of one rank of FSDP2 (``fully_shard`` on each layer and the root) in a steady AdamW step of a
small Llama, as PyTorch's own ``FSDPMemTracker`` counts it on a fake process group of ``world`` ranks (CPU, fp32;
nothing is communicated). Prints the peak's bytes by category as JSON.

Run: python -m tests.multi_gpu.fsdp2_peak HIDDEN FFN LAYERS VOCAB WORLD BATCH SEQ
"""

import json
import os
import sys

import torch
import torch.distributed as dist
import transformers
from torch.distributed._tools.fsdp2_mem_tracker import FSDPMemTracker
from torch.distributed.fsdp import fully_shard
from torch.testing._internal.distributed.fake_pg import FakeStore


def llama(hidden: int, ffn: int, layers: int, vocab: int) -> transformers.LlamaForCausalLM:
    config = transformers.LlamaConfig(
        hidden_size=hidden, intermediate_size=ffn, num_attention_heads=8, num_key_value_heads=4,
        num_hidden_layers=layers, vocab_size=vocab, tie_word_embeddings=False, use_cache=False,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config)


def main(hidden: int, ffn: int, layers: int, vocab: int, world: int, batch: int, seq: int) -> None:
    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=world)
    torch.manual_seed(0)
    model = llama(hidden, ffn, layers, vocab)
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    optimizer = torch.optim.AdamW(model.parameters(), foreach=True)
    ids = torch.randint(0, vocab, (batch, seq))
    tracker = FSDPMemTracker(model, optimizer)
    tracker.track_inputs((ids,))
    with tracker:
        for step in range(2):  # the second is steady: the optimizer state exists before it
            optimizer.zero_grad()
            model(ids, labels=ids, use_cache=False).loss.backward()
            optimizer.step()
            if step == 0:
                tracker.reset_mod_stats()
    peak = tracker.get_tracker_snapshot("peak")[torch.device("cpu")]
    print(json.dumps({str(getattr(key, "value", key)): value for key, value in peak.items()}), flush=True)
    os._exit(0)  # no teardown of the process group: nothing was sent


if __name__ == "__main__":
    main(*map(int, sys.argv[1:8]))

"""The collectives torchcost says a layout runs, against what torch.distributed sends in a real step on 2 CPU
processes joined by gloo (gloo_runs.py): data parallel (DDP), tensor parallel (DTensor) and FSDP2."""

import json
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from tests.multi_gpu import gloo_runs
from torchcost.multi_gpu.estimate import Training, parallel
from torchcost.multi_gpu.layout import Layout

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def sent(tmp_path_factory):
    """run -> (calls per kind, bytes per kind), as rank 0 saw them."""
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch has no gloo")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = str(free.getsockname()[1])
    out = tmp_path_factory.mktemp("gloo") / "sent.json"
    command = [sys.executable, "-m", "tests.multi_gpu.gloo_runs"]
    ranks = [subprocess.Popen([*command, str(rank), port, str(out)], cwd=ROOT) for rank in range(2)]
    assert [rank.wait(timeout=300) for rank in ranks] == [0, 0]
    found = {}
    for run, calls in json.loads(out.read_text()).items():
        counts, volumes = Counter(), Counter()
        for kind, nbytes in calls:
            counts[kind] += 1
            volumes[kind] += nbytes
        found[run] = (counts, volumes)
    return found


def estimated(**layout):
    model = gloo_runs.model().to("meta")
    training = Training(seq_len=gloo_runs.SEQ, dtype=torch.float32)
    step = parallel(model, Layout(microbatch=gloo_runs.BATCH, **layout), training=training).step
    counts, volumes = Counter(), Counter()
    for collective in step.collectives:
        counts[collective.kind] += collective.count
        volumes[collective.kind] += collective.count * collective.nbytes
    return counts, volumes


def test_data_parallel_all_reduces_every_gradient_once(sent):
    # DDP put all 30080 fp32 gradients in one bucket: 120320 bytes
    assert estimated(dp=2)[1] == sent["dp"][1] == Counter(all_reduce=120320)


def test_tensor_parallel_all_reduces_each_layers_hidden_states_four_times(sent):
    # per layer: after attention and after the MLP forward, at their inputs backward; 2 x 16 x 32 fp32 each
    assert estimated(tp=2) == sent["tp"] == (Counter(all_reduce=8), Counter(all_reduce=8 * 4096))


def test_fsdp_gathers_weights_twice_but_the_roots_once_and_scatters_gradients(sent):
    # forward: the root's 4672 fp32 weights and 2 layers of 12704; backward: the layers again (FSDP2 keeps the
    # root gathered); then every gradient reduce-scattered. FSDP2 calls once per layer, torchcost once per kind
    volumes = sent["fsdp"][1]
    assert volumes == Counter(all_gather=18688 + 4 * 50816, reduce_scatter=18688 + 2 * 50816)
    assert estimated(dp=2, zero=3)[1] == volumes

import pytest

from torchcost.predict.timeline import Step, run


def step(host, device, kernels=1, waits=False, index=0):
    return Step((index,), host, device, 0.0, device, kernels, waits)


def test_small_kernels_wait_for_the_host():
    # each op costs the host 10 us and its kernel 2 us: the device idles 8 us of every 10
    timeline = run([step(10, 2, index=i) for i in range(3)], overlap=True)
    assert [p.start_s for p in timeline.placed] == [10, 20, 30]
    assert timeline.latency_s == 32  # the last kernel ends 2 us after its launch at 30
    assert [p.advance_s for p in timeline.placed] == [12, 10, 10]
    assert (timeline.host_s, timeline.device_s) == (30, 6)


def test_large_kernels_let_the_host_run_ahead():
    # launched at 1, 2, 3 us; each runs 100 us after the one before: ends 101, 201, 301
    timeline = run([step(1, 100, index=i) for i in range(3)], overlap=True)
    assert [p.start_s for p in timeline.placed] == [1, 101, 201]
    assert timeline.latency_s == 301
    assert sum(p.advance_s for p in timeline.placed) == timeline.latency_s


def test_ops_without_kernels_cost_the_host_only():
    timeline = run([step(5, 50), step(3, 0, kernels=0), step(2, 10)], overlap=True)
    # the view is issued at 8 while the first kernel runs (5..55); the third starts when the first ends
    assert timeline.placed[1].start_s == 8 and timeline.placed[2].start_s == 55
    assert timeline.latency_s == 65


def test_a_value_read_back_makes_the_host_wait():
    # .item() after a 100 us kernel: the host waits until 101, then issues the next op (2 us) at 103
    timeline = run([step(1, 100), step(0, 0, kernels=0, waits=True), step(2, 1)], overlap=True)
    assert timeline.placed[2].start_s == 103 and timeline.latency_s == 104


def test_on_a_cpu_nothing_overlaps():
    timeline = run([step(1, 100), step(1, 100)], overlap=False)
    assert timeline.latency_s == 202 == timeline.host_s + timeline.device_s


def test_a_replay_cost_comes_first():
    timeline = run([step(0, 2), step(0, 2)], overlap=True, start_s=15)
    assert timeline.latency_s == pytest.approx(19) and timeline.placed[0].advance_s == 17


def test_the_fast_latency_is_the_timelines():
    from torchcost.predict.timeline import overlapped_latency

    steps = [step(1, 100), step(0, 0, kernels=0, waits=True), step(2, 1), step(10, 2), step(3, 0, kernels=0)]
    fast = overlapped_latency([s.host_s for s in steps], [s.device_s for s in steps], [s.kernels for s in steps],
                              [s.waits for s in steps])  # fmt: skip
    assert fast == run(steps, overlap=True).latency_s == 116

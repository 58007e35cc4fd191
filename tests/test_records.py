import dataclasses

import pytest

from torchcost.records import CostTotals, OpCost, OpRecord


def test_a_record_made_by_of_is_the_record_the_constructor_makes():
    values = ("aten.mm", "forward", ("", "fc"), OpCost(16, 8, 96, 32), ((2, 4), (4, 2)), ((2, 2),), True, None,
              ("float32", "float32"), ("float32",), "", "matmul")  # fmt: skip
    made = OpRecord.of(*values)
    assert made == OpRecord(*values) and hash(made) == hash(OpRecord(*values))
    assert dataclasses.astuple(made)[2:4] == (("", "fc"), (16, 8, 96, 32))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.op = "aten.addmm"  # type: ignore[misc]
    with pytest.raises(ValueError):  # one value short
        OpRecord.of(*values[:-1])


def test_totals_merge_op_costs_and_other_totals():
    totals = CostTotals()
    totals.merge(OpCost(flops=10, macs=5, bytes_read=7, bytes_written=3))
    other = CostTotals(macs=1, flops=2, bytes_read=3, bytes_written=4)
    totals.merge(other)
    # 5 + 1 MACs, 10 + 2 FLOPs, 7 + 3 bytes read, 3 + 4 bytes written
    assert (totals.macs, totals.flops, totals.bytes_read, totals.bytes_written) == (6, 12, 10, 7)
    assert (other.macs, other.flops) == (1, 2)  # the other sum is left as it was


def test_a_record_under_other_modules_is_the_record_replace_makes():
    values = ("aten.relu_", "forward", ("", "act"), OpCost(0, 0, 64, 64), ((4, 4),), ((4, 4),), True, None,
              ("float32",), ("float32",), "", "")  # fmt: skip
    record = OpRecord.of(*values)
    moved = record.under(("", "block", "block.act"))
    assert moved == dataclasses.replace(record, modules=("", "block", "block.act"))
    assert record.modules == ("", "act")  # the kept record is left as it was

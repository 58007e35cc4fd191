import sys

import pytest

from torchcost.sweep.output import FORMATS, RowWriter, SweepError, check_path, journal, read_rows
from torchcost.sweep.rows import Row, columns

HARDWARE = ["h100", "l4"]


def sample_rows() -> list[Row]:
    counted = Row(
        "timm:resnet18",
        "1x3x160x160",
        8,
        "bfloat16",
        family="resnet",
        inputs="8x3x160x160 bfloat16",
        device="meta",
        params=11_689_512,
        size_bytes=23_379_024,
        macs=4_643_986_432,
        flops=9_325_000_001,
        memory_access_bytes=123_456_789,
        uncounted_calls=0,
        predicted_s={"h100": 1.2345678901234567e-4},  # none on l4: an empty cell
        seconds=0.5,
        worker="host:12",
        worker_peak_rss_bytes=700_000_000,
    )
    failed = Row("hf:nope", error="UnknownModelError: unknown transformers model type 'nope', with a, comma")
    return [counted, failed]


@pytest.mark.parametrize("suffix", FORMATS)
def test_rows_come_back_as_written(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"rows{suffix}"
    writer = RowWriter(path, columns(HARDWARE), append=False)
    for row in sample_rows():
        writer.write(row)
    writer.close()
    rows, found = read_rows(path)
    assert rows == sample_rows()
    assert found == columns(HARDWARE)
    assert not journal(path).exists()


def test_columns_are_the_row_fields_with_one_prediction_column_per_device():
    assert columns(HARDWARE)[:3] == ["spec", "input_size", "batch"]
    assert columns(HARDWARE)[-6:] == [
        "predicted_s_h100",
        "predicted_s_l4",
        "seconds",
        "worker",
        "worker_peak_rss_bytes",
        "error",
    ]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_line_cut_short_is_ignored_and_dropped_before_appending(tmp_path, suffix):
    path = tmp_path / f"rows{suffix}"
    writer = RowWriter(path, columns(HARDWARE), append=False)
    writer.write(sample_rows()[0])
    writer.close()
    whole = path.read_text()
    path.write_text(whole + whole.splitlines()[-1][:25])  # a kill in the middle of writing a row
    assert read_rows(path)[0] == sample_rows()[:1]
    writer = RowWriter(path, columns(HARDWARE), append=True)
    writer.write(sample_rows()[1])
    writer.close()
    assert read_rows(path)[0] == sample_rows()


def test_parquet_rows_survive_an_interruption_in_the_journal(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "rows.parquet"
    writer = RowWriter(path, columns(HARDWARE), append=False)
    writer.write(sample_rows()[0])
    writer.file.close()  # interrupted before close() could write the Parquet file
    assert not path.exists()
    assert read_rows(path)[0] == sample_rows()[:1]
    writer = RowWriter(path, columns(HARDWARE), append=True)  # --resume
    writer.write(sample_rows()[1])
    writer.close()
    assert path.exists() and not journal(path).exists()
    assert read_rows(path)[0] == sample_rows()


def test_unknown_extension():
    with pytest.raises(SweepError, match=r"use one of \.csv, \.jsonl, \.parquet"):
        check_path(__import__("pathlib").Path("rows.xlsx"))


def test_parquet_without_pyarrow_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    with pytest.raises(SweepError, match=r"pip install 'torchcost\[parquet\]'"):
        check_path(tmp_path / "rows.parquet")

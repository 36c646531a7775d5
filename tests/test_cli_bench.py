"""The lstmkit command and the benchmark (on tiny shapes: figures are measured, not asserted)."""

import subprocess
import sys

import pytest

from lstmkit import bench, cli
from harness import ENGINES


def test_cli_help_and_unknown_command(capsys):
    assert cli.main([]) == 2
    assert "bench" in capsys.readouterr().out
    assert cli.main(["--help"]) == 0
    with pytest.raises(SystemExit):
        cli.main(["trian"])
    assert "invalid choice: 'trian'" in capsys.readouterr().err


@pytest.mark.skipif("fast" not in ENGINES, reason="the benchmark times the engine")
def test_bench_rows_and_table():
    rows = bench.run([(4, 2, 3, 5)], ["lstm", "gru", "elman", "lstm1997"], reps=1, warmup=0, threads=None)
    models = [r["model"] for r in rows]
    assert models == ["nn.LSTM", "lstm", "nn.GRU", "gru", "nn.RNN", "elman", "lstm1997"]
    lstm = rows[0]
    assert lstm["infer_vs_lstm"] == 1.0 and lstm["train_vs_lstm"] == 1.0 and lstm["saved_vs_lstm"] == 1.0
    gru = rows[3]
    assert gru["train_vs_torch_same"] is not None and gru["saved_mb"] > 0
    table = bench.format_table(rows)
    assert table.count("\n") == len(rows) + 1 and "| 4,2,3,5 | lstm1997 |" in table


@pytest.mark.skipif("fast" not in ENGINES, reason="the benchmark times the engine")
def test_bench_command_end_to_end():
    out = subprocess.run([sys.executable, "-m", "lstmkit", "bench", "--shapes", "3,2,2,4", "--cells", "cifg",
                          "--reps", "1", "--warmup", "0"], capture_output=True, text=True, check=True).stdout
    assert "| 3,2,2,4 | cifg |" in out and "1 timed repetitions" in out
    bad = subprocess.run([sys.executable, "-m", "lstmkit", "bench", "--shapes", "3,2,2"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "expected T,B,I,H as four positive ints, got '3,2,2'" in bad.stderr

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_prints_one_json_line(dataset):
    proc = subprocess.run([sys.executable, "-m", "trainer", "bench", "--model", "compact_cnn", "--input-size", "32",
                           "--steps", "2", "--warmup", "1", "--batch-size", "4", "--threads", "1",
                           "--dataset-dir", str(dataset)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["event"] == "bench" and result["model"] == "compact_cnn" and result["input_size"] == 32
    for key in ("train_images_per_sec", "worker_images_per_sec", "worker_vs_bare", "pipeline_images_per_sec",
                "data_images_per_sec"):
        assert result[key] > 0
    assert result["dataset_load_seconds"] >= 0

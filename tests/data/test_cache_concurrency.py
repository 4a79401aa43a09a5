"""Two runs of the same dataset starting at once (two real processes) build the decode-once cache side by
side: both succeed, and exactly one valid cache remains."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

BUILD = textwrap.dedent("""
    import sys
    from pixelwise.data.cache import build_cache
    from pixelwise.data.formats import open_dataset
    index = open_dataset(sys.argv[1])
    cache = build_cache(index.split("train"), index.reader, (32, 48), True, sys.argv[2], workers=1, progress=False)
    image, mask = cache.load(index.split("train")[-1])
    print(cache.folder.name, image.shape, mask.shape, int(image.sum()))
""")


def test_two_processes_building_one_cache_at_once(tiny_data, tmp_path):
    root = tmp_path / "cache"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    runs = [subprocess.Popen([sys.executable, "-c", BUILD, str(tiny_data), str(root)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = [run.communicate(timeout=300) + (run.returncode,) for run in runs]
    assert [code for _, _, code in results] == [0, 0], [err for _, err, _ in results]
    assert results[0][0] == results[1][0]  # the same cache, the same pixels
    folders = [p for p in root.iterdir() if not p.name.startswith(".")]
    assert len(folders) == 1 and (folders[0] / "table.npy").is_file()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no partial build left behind
    table = np.load(folders[0] / "table.npy")
    assert len(table) == 12 and (table[:, 1:] > 0).all()

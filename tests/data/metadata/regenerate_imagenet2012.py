"""Regenerates metadata/imagenet2012/5.1.0/ from the real TFDS builder.

Run from the repo root: `python tests/data/metadata/regenerate_imagenet2012.py`.
It prepares the real `imagenet2012` builder (tfds 4.9.10) from a miniature
manual-download directory (see tests/data/tfds_fixtures.py), copies the
generated metadata files, and rewrites only the split sizes to the official
ones, so `tfds.testing.mock_data(policy=USE_FILES, data_dir=<this folder>)`
reports real `info.splits`. See README.md for what was changed and why.
"""

import json
import os
import pathlib
import shutil
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, os.fspath(HERE.parent))  # For tfds_fixtures.

# Official ILSVRC2012 sizes (tfds catalog, imagenet2012 5.1.0).
SPLITS = {"train": 1_281_167, "validation": 50_000, "test": 100_000}
# Shard counts are arbitrary (only the sum matters to the tests); bytes are
# rough per-split sizes (~110 KB per JPEG) and are not used by any test.
NUM_SHARDS = {"train": 1024, "validation": 64, "test": 128}
BYTES_PER_EXAMPLE = 110_000


def _shards(total: int, count: int) -> list[str]:
  base, extra = divmod(total, count)
  return [str(base + (1 if i < extra else 0)) for i in range(count)]


def main() -> None:
  import tfds_fixtures  # pylint: disable=g-import-not-at-top
  import mnv2_jax.data as data  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    tfds_fixtures.make_imagenet_manual_dir(tmp / "manual")
    data.prepare(tfds_fixtures.input_config(
        dataset="imagenet2012", data_dir=os.fspath(tmp / "tfds"),
        manual_dir=os.fspath(tmp / "manual")))
    src = tmp / "tfds" / "imagenet2012" / "5.1.0"
    dst = HERE / "imagenet2012" / "5.1.0"
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("features.json", "label.labels.txt"):
      shutil.copy(src / name, dst / name)
    info = json.loads((src / "dataset_info.json").read_text())
  template = info["splits"][0]["filepathTemplate"]
  info["splits"] = [
      {"filepathTemplate": template, "name": name,
       "numBytes": str(size * BYTES_PER_EXAMPLE),
       "shardLengths": _shards(size, NUM_SHARDS[name])}
      for name, size in SPLITS.items()]
  (dst / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
  main()

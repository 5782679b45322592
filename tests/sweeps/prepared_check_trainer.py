"""Fake trainer that records whether its dataset was prepared when it started, then acts as
``fake_trainer.py`` (no training).

Appends ``{"run": <name>, "prepared": bool, "entries": [...]}`` to
``<workdir>/../data_seen.jsonl``: whether ``<input.data_dir>/sklearn_digits/1.0.0`` held a
complete TFDS version dir (``dataset_info.json`` and ``features.json``, what
``builder.is_prepared()`` checks) and what the data_dir listed. A plain file check: importing
TFDS here would add seconds to every fake run.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_trainer  # pylint: disable=g-import-not-at-top,wrong-import-position


def main(argv):
  workdir = next(a.split("=", 1)[1] for a in argv if a.startswith("--workdir="))
  data_dir = next(a.split("=", 1)[1] for a in argv
                  if a.startswith("--config.input.data_dir="))
  version_dir = os.path.join(data_dir, "sklearn_digits", "1.0.0")
  prepared = all(os.path.isfile(os.path.join(version_dir, f))
                 for f in ("dataset_info.json", "features.json"))
  entries = sorted(os.listdir(data_dir)) if os.path.isdir(data_dir) else None
  os.makedirs(os.path.dirname(workdir), exist_ok=True)
  with open(os.path.join(os.path.dirname(workdir), "data_seen.jsonl"), "a") as f:
    f.write(json.dumps({"run": os.path.basename(workdir), "prepared": prepared,
                        "entries": entries}) + "\n")
  return fake_trainer.main(argv)


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))

"""Stands in for ``python -m mnv2_jax.main`` in launcher tests: no training at all.

Appends its argv to ``<workdir>/../invocations.jsonl`` and writes ``<workdir>/summary.json``
with ``"status": "finished"``. If the run name contains $FAKE_TRAINER_FAIL it writes
``"status": "failed"`` and exits 3 instead.
"""

import json
import os
import sys


def main(argv):
  workdir = next(a.split("=", 1)[1] for a in argv if a.startswith("--workdir="))
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(os.path.dirname(workdir), "invocations.jsonl"), "a") as f:
    f.write(json.dumps(argv) + "\n")
  fail = os.environ.get("FAKE_TRAINER_FAIL")
  failed = bool(fail) and fail in os.path.basename(workdir)
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump({"status": "failed" if failed else "finished"}, f)
  return 3 if failed else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))

"""`mnv2-latency`: targets from the spec and ablation axes, interleaved timing, JSON, bad input."""

import json

import pytest

from mnv2_jax.export import latency
from mnv2_jax.export import latency_cli

pytestmark = pytest.mark.slow(seconds=25)


def test_default_targets_are_the_22_released_and_the_fig6_variants_at_1_0_224():
  targets = latency.targets()
  names = [t.name for t in targets]
  assert len(names) == len(set(names)) == 25
  assert sum(t.fields == () for t in targets) == 22
  variants = {t.variant for t in targets if t.fields}
  assert variants == {"relu6/bottleneck", "linear/expansion", "linear/none"}
  assert all((t.width, t.resolution) == (1.0, 224) for t in targets if t.fields)


def test_schedule_visits_every_key_once_per_round_alternating_direction():
  assert latency.schedule(["a", "b", "c"], 3) == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]


def test_one_invocation_end_to_end(tmp_path, capsys):
  out = str(tmp_path / "lat.json")
  result = latency_cli.main(["--points=0.35/32", "--variants_at=0.35/32", "--threads=1,2",
                             "--warmup=1", "--repeats=3", f"--out={out}",
                             f"--plot_dir={tmp_path}"])
  assert (tmp_path / "latency_vs_madds.png").stat().st_size > 0
  with open(out) as f:
    assert json.load(f) == json.loads(json.dumps(result))
  rows = result["rows"]
  assert len(rows) == 4 * 2 and {r["threads"] for r in rows} == {1, 2}
  assert all(r["n"] == 3 and 0 < r["q1_ms"] <= r["median_ms"] <= r["q3_ms"] for r in rows)
  assert len({r["madds"] for r in rows}) == 1          # Fig. 6 variants: equal MAdds
  assert result["machine"]["versions"]["ai-edge-litert"]
  table = capsys.readouterr().out
  assert "| 0.35/32 linear/expansion |" in table and "2 threads: median ms" in table


@pytest.mark.parametrize("argv,needle", [
    (["--threads=0"], "--threads must be integers >= 1"),
    (["--threads=a"], "--threads must be integers >= 1"),
    (["--points=abc"], "a point is WIDTH/RESOLUTION"),
    (["--repeats=0"], "--repeats must be an integer >= 1"),
    (["--points=none", "--variants_at=none"], "nothing to time"),
])
def test_bad_flags_fail_before_any_export(argv, needle, tmp_path, monkeypatch):
  exported = []
  monkeypatch.setattr(latency, "export", exported.append)  # would record any export
  with pytest.raises(ValueError, match=needle):
    latency_cli.main(argv + [f"--out={tmp_path / 'x.json'}"])
  assert not exported and not (tmp_path / "x.json").exists()

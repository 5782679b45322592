"""`mnv2_jax.sweeps.slurm_queue` parsing, on output in the formats SLURM 22.05 prints.

The queries themselves run against a real SLURM in tests/sweeps/test_slurm.py.
"""

from mnv2_jax.sweeps import slurm_queue as Q

# `scontrol show job -o 40`: a running task, a requeued one, the still-pending rest of the array.
SCONTROL = """\
JobId=41 ArrayJobId=40 ArrayTaskId=0 ArrayTaskThrottle=2 JobName=mnv2:g UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=1 Nice=0 Account=(null) QOS=(null) JobState=RUNNING Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:03 TimeLimit=UNLIMITED
JobId=42 ArrayJobId=40 ArrayTaskId=1 ArrayTaskThrottle=2 JobName=mnv2:g UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=1 Nice=0 Account=(null) QOS=(null) JobState=PENDING Reason=BeginTime Dependency=(null) Requeue=1 Restarts=1 BatchFlag=1 Reboot=0 ExitCode=0:15 RunTime=00:00:00 TimeLimit=UNLIMITED
JobId=40 ArrayJobId=40 ArrayTaskId=2-4,7%2 ArrayTaskThrottle=2 JobName=mnv2:g UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=1 Nice=0 Account=(null) QOS=(null) JobState=PENDING Reason=JobArrayTaskLimit Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:00 TimeLimit=UNLIMITED
JobId=43 JobName=not_an_array JobState=RUNNING Restarts=0
"""


def test_expand_indices():
  assert Q.expand_indices("3") == [3]
  assert Q.expand_indices("2-4,7%2") == [2, 3, 4, 7]
  assert Q.expand_indices("0-6:3") == [0, 3, 6]


def test_parse_scontrol():
  states = {(s.job_id, s.index): s for s in Q.parse_scontrol(SCONTROL)}
  assert sorted(states) == [("40", i) for i in (0, 1, 2, 3, 4, 7)]
  assert states["40", 0].state == "RUNNING" and states["40", 0].live
  assert (states["40", 1].state, states["40", 1].restarts, states["40", 1].reason) == \
      ("PENDING", 1, "BeginTime")
  assert states["40", 7].reason == "JobArrayTaskLimit"


def test_parse_sacct():
  states = Q.parse_sacct("50_0|COMPLETED|0:0\n50_1|FAILED|1:0\n50_[2-3]|PENDING|0:0\n"
                         "50_4|CANCELLED by 0|0:15\n51|COMPLETED|0:0\n")
  got = {(s.index, s.state, s.exit_code) for s in states}
  assert got == {(0, "COMPLETED", 0), (1, "FAILED", 1), (2, "PENDING", 0), (3, "PENDING", 0),
                 (4, "CANCELLED", 0)}
  assert not [s for s in states if s.index == 1][0].live


def test_query_without_slurm_is_empty(monkeypatch, tmp_path):
  monkeypatch.setenv("PATH", str(tmp_path))  # no scontrol, no sacct
  assert Q.query(["40"]) == {}

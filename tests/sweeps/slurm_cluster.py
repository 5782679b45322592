"""A real one-node SLURM cluster on localhost, for tests (the ``slurm_cluster`` fixture).

``SlurmCluster.start()`` brings up, in a fresh temp dir of its own: a MUNGE daemon (own key,
socket, pid/log/seed files), ``slurmctld -D`` and ``slurmd -D`` (own ``slurm.conf``, state and
spool dirs, logs, pid files, and TCP ports picked free at runtime), and waits until ``sinfo``
shows the node idle. ``close()`` SIGKILLs this cluster's job processes and slurmstepds (found
by the ``SLURM_CONF=<this cluster's conf>`` in their environment, which no other process has),
stops the three daemons by their ``Popen`` handles (never by name), and removes the temp dir.
The daemons also get SIGTERM if the process that started them dies first. Nothing is
read from or written to ``/etc/slurm``, ``/etc/munge``, ``/var/spool`` or ``/run``, so two test
sessions (or a developer's own SLURM) on one machine do not clash. Needs root and Debian's
``slurmctld slurmd slurm-client munge`` (written against Slurm 22.05); without them
``start()`` raises ``SlurmUnavailable`` and the fixture fails (never skips).

Use (``tests/sweeps/conftest.py`` registers the session-scoped fixture)::

    def test_x(slurm_cluster):
      job = slurm_cluster.sbatch("--array=0-3%2", "--output=/tmp/o_%A_%a", "--wrap=true")
      final = slurm_cluster.wait_job(job, timeout=60)   # {"7_0": JobInfo(...), ...}
      assert {i.state for i in final.values()} == {"COMPLETED"}
      slurm_cluster.run(["squeue"]).stdout              # any client, in slurm_cluster.env

``env`` is ``os.environ`` as it is *when read* (so per-module monkeypatching shows) minus any
inherited ``SLURM_*``/``SBATCH_*``/``SRUN_*``/``SALLOC_*``/``SQUEUE_*`` variables (pytest run
inside a SLURM job would otherwise hand its own job id to ``srun``), plus ``SLURM_CONF`` and
a ``PATH`` that has ``/usr/bin`` and ``/usr/sbin``. ``sbatch`` propagates it (``--export=ALL``)
to the job. Jobs run as root. Note ``sbatch`` without ``--output`` writes ``slurm-<id>.out``
into its working directory (the tests' is the repo root): pass ``--output``.

Configuration (``slurm.conf`` in the temp dir; ``SlurmCluster.conf``), notable choices:

* One node, ``NodeName=$(hostname -s) NodeAddr=127.0.0.1 CPUs=$(nproc)``, RealMemory 90 % of
  ``slurmd -C``'s; ``SlurmdParameters=config_overrides`` so a topology/memory mismatch with
  the hardware never drains it. One partition, ``SlurmCluster.partition`` (``debug``).
* ``SelectType=select/cons_tres``, ``SelectTypeParameters=CR_CPU`` (memory not consumable): two
  1-CPU array tasks run at once on a 2-CPU node. ``ProctrackType=proctrack/linuxproc``,
  ``TaskPlugin=task/none``: no cgroups needed.
* ``AuthInfo=socket=<tmp>/munge/munge.socket,cred_expire=5``: 22.05 takes both in one comma
  list; the clients read the socket from the same ``slurm.conf``. 5 is the smallest
  ``cred_expire`` accepted (4 logs ``AuthInfo=cred_expire=4 invalid`` and falls back to 120).
  It is also how long a requeued job is held (``Reason=BeginTime``) before it may start again.
* ``SchedulerParameters=sched_interval=1,bf_interval=1``: the main scheduling loop runs every
  second (default 60 s), so a requeued job whose BeginTime has passed starts within ~1 s.
  Measured on 2 cores: ``scontrol requeue`` of a running job whose tasks exit on SIGTERM ->
  running again (``SLURM_RESTART_COUNT=1``) 6.6-6.9 s later (default config: 120 s or more).
* ``FirstJobId`` random in [1000, 10**6): job ids differ between clusters (and sessions), which
  matters because ``jax.distributed.initialize()`` takes its coordinator port from
  ``SLURM_JOB_ID`` (``id % 4096 + 61440``): two sessions' jobs with equal ids on one host
  collided there ("unexpectedly tried to connect with a different incarnation").
* ``KillWait=30``, ``MinJobAge=600`` (finished jobs stay in ``scontrol show job`` for 10 min),
  ``ReturnToService=2``, ``JobRequeue=1``, ``MailProg=/bin/true`` (none installed).
* ``JobCompType=jobcomp/filetxt``, ``JobCompLoc=SlurmCluster.jobcomp``: one line per job (array
  task) each time it leaves the running state, space-separated ``Key=Value``: ``JobId``
  (the raw id: array tasks have their own, with ``ArrayJobId=``/``ArrayTaskId=`` fields at the
  end), ``UserId GroupId Name JobState Partition TimeLimit StartTime EndTime NodeList NodeCnt
  ProcCnt WorkDir ReservationName Tres Account QOS WcKey Cluster SubmitTime EligibleTime
  DerivedExitCode ExitCode`` (exit codes as ``<exit status>:<signal>``). A requeue writes a
  line with ``JobState=PENDING`` (the run that was ended), then the next run's line when it
  ends. ``jobcomp_records()`` parses it. (With ``AccountingStorageType=accounting_storage/none``
  there is no ``sacct``.)
* No ``slurmdbd``, no accounting gather (``JobAcctGatherType=jobacct_gather/none``).

What a job sees on ``scontrol requeue <id>`` (measured here, Slurm 22.05.8): every task of a
running ``srun`` step gets SIGCONT then SIGTERM at once, and SIGKILL ``KillWait`` (30 s) later
if still alive; the batch script's shell (and ``srun`` itself) gets SIGCONT and SIGTERM too,
at the same moment. The job shows ``COMPLETING`` until its processes are gone, then
``PENDING (BeginTime)`` for ``cred_expire`` + 1 s, then runs again with
``SLURM_RESTART_COUNT`` incremented (unset on the first run).

Timing (2-core VM under gVisor, measured 5 times): ``start()`` 1.15-1.26 s (munged ~0.1 s,
slurmctld + slurmd to an idle node the rest); ``close()`` 0.05-0.2 s, also with jobs running.
``cancel_all()`` (end every job, keep the cluster) ~3 s with a running ``srun`` step.

Run this file directly (``python tests/sweeps/slurm_cluster.py``, as root) to get a cluster to
poke at by hand: it prints the ``SLURM_CONF=...`` to export and runs until Ctrl-C.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

INSTALL_HINT = "as root: apt-get install -y slurmctld slurmd slurm-client munge"
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "scancel",
            "sinfo")
_SYS_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# Inherited variables that would make the clients act on another cluster's job or options.
_FOREIGN_ENV = re.compile(r"^(SLURM_|SBATCH_|SRUN_|SALLOC_|SQUEUE_|SINFO_|SCONTROL_|SCANCEL_)")
# A job that is in none of these states has left squeue for good.
ACTIVE_STATES = frozenset({
    "PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "REQUEUED", "REQUEUE_FED",
    "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "SPECIAL_EXIT",
    "RESV_DEL_HOLD", "POWER_UP_NODE", "UPDATE_DB"})
# AF_UNIX socket paths (munged's, slurmstepd's in the spool dir) must stay under 108 bytes.
_MAX_ROOT_LEN = 60


class SlurmUnavailable(RuntimeError):
  """SLURM or MUNGE is not installed, or we are not root: nothing was started."""


class SlurmStartError(RuntimeError):
  """The daemons did not come up; the message has their log tails."""


class CommandError(subprocess.CalledProcessError):
  """A CalledProcessError whose message shows the command's stdout and stderr."""

  def __str__(self) -> str:
    return (f"{shlex.join(map(str, self.cmd))} exited with {self.returncode}\n"
            f"stdout: {self.stdout}\nstderr: {self.stderr}")


@dataclasses.dataclass(frozen=True)
class JobInfo:
  """One job or array task, from ``scontrol show job`` or the jobcomp file.

  ``key`` is ``"<array job id>_<task id>"`` for array tasks (``"7_[2-3%2]"`` for a block still
  pending) and the job id otherwise; ``job_id`` the raw ``JobId`` (each array task has its
  own; the last task to start takes over the array job's); ``state`` e.g. ``COMPLETED``;
  ``exit_code`` as SLURM writes it, ``"<exit status>:<signal>"``; ``restarts`` scontrol's
  ``Restarts`` (None from jobcomp); ``fields`` every raw ``Key=Value``.
  """
  key: str
  job_id: str
  state: str
  exit_code: str
  restarts: int | None
  fields: Mapping[str, str] = dataclasses.field(repr=False)

  @property
  def active(self) -> bool:
    return self.state in ACTIVE_STATES

  @property
  def exit_status(self) -> int:
    """The exit status (``3`` for ``3:0``; ``0`` for ``0:9``, killed by SIGKILL)."""
    return int(self.exit_code.split(":")[0])

  @property
  def signal(self) -> int:
    """The signal that ended it, 0 if none (``9`` for ``0:9``)."""
    return int(self.exit_code.split(":")[1]) if ":" in self.exit_code else 0


def parse_key_values(line: str) -> dict[str, str]:
  """``"A=1 B=x y C=c=d"`` -> ``{"A": "1", "B": "x y", "C": "c=d"}``: a key starts after a
  space, so values may hold ``=`` (``TRES=cpu=1,...``) and spaces (``Command=a b``)."""
  starts = [m for m in re.finditer(r"(?:^|(?<=\s))([A-Za-z][\w:/]*)=", line)]
  out = {}
  for m, nxt in zip(starts, starts[1:] + [None]):
    out[m.group(1)] = line[m.end():nxt.start() if nxt else len(line)].strip()
  return out


def _job_info(fields: Mapping[str, str]) -> JobInfo:
  task, array_id = fields.get("ArrayTaskId"), fields.get("ArrayJobId")
  if task and array_id:
    key = f"{array_id}_{task}" if task.isdigit() else f"{array_id}_[{task}]"
  else:
    key = fields["JobId"]
  restarts = fields.get("Restarts", fields.get("RestartCnt"))
  return JobInfo(key=key, job_id=fields["JobId"], state=fields.get("JobState", "UNKNOWN"),
                 exit_code=fields.get("ExitCode", ""),
                 restarts=int(restarts) if restarts and restarts.isdigit() else None,
                 fields=dict(fields))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _die_with_parent() -> None:
  """preexec_fn: SIGTERM the daemon if the test process dies without tearing down."""
  try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except OSError:
    pass


def _tail(path: str, lines: int = 25) -> str:
  try:
    with open(path, errors="replace") as f:
      return "".join(f.readlines()[-lines:])
  except OSError as e:
    return f"({e})\n"


def missing_requirements() -> str | None:
  """Why a cluster cannot be started here (None when it can)."""
  problems = []
  if os.geteuid() != 0:
    problems.append("not running as root (slurmd and SlurmUser=root need it)")
  path = os.pathsep.join([os.environ.get("PATH", ""), *_SYS_PATH])
  missing = [b for b in BINARIES if shutil.which(b, path=path) is None]
  if missing:
    problems.append("missing " + ", ".join(missing))
  if not problems:
    return None
  return ("a real local SLURM is needed (tests/sweeps/test_slurm.py): " + "; ".join(problems)
          + f". Install it {INSTALL_HINT} (and run the tests as root).")


class SlurmCluster:
  """A running one-node cluster. Build it with ``SlurmCluster.start()`` (or ``with``)."""

  partition = "debug"

  def __init__(self, root: str):
    self.root = root
    self.conf = os.path.join(root, "slurm.conf")
    self.jobcomp = os.path.join(root, "jobcomp.txt")
    self.log_dir = os.path.join(root, "log")
    self.munge_socket = os.path.join(root, "munge", "munge.socket")
    self.node = socket.gethostname().split(".")[0]
    self.cpus = len(os.sched_getaffinity(0))  # = nproc
    self.ctld_port = self.slurmd_port = self.first_job_id = 0
    self._procs: dict[str, subprocess.Popen] = {}
    self._closed = False

  # ---------------------------------------------------------------- bring-up / teardown

  @classmethod
  def start(cls, timeout: float = 30.0, attempts: int = 2) -> SlurmCluster:
    """Bring up munged, slurmctld and slurmd; return once the node is idle.

    Raises SlurmUnavailable (nothing installed / not root) or, after ``attempts`` tries (a
    port picked free can be taken before slurmctld binds it), SlurmStartError (with logs)."""
    why = missing_requirements()
    if why:
      raise SlurmUnavailable(why)
    base = tempfile.gettempdir()
    if len(base) > _MAX_ROOT_LEN - 20:
      base = "/tmp"
    for attempt in range(attempts):
      cluster = cls(tempfile.mkdtemp(prefix="mnv2-slurm-", dir=base))
      try:
        cluster._start(timeout)
        return cluster
      except SlurmStartError:
        cluster.close()
        if attempt == attempts - 1:
          raise
      except BaseException:
        cluster.close()
        raise
    raise AssertionError("unreachable")

  def _start(self, timeout: float) -> None:
    os.chmod(self.root, 0o755)  # munged: every dir above its socket must be o+x
    for sub in ("munge", "state", "spool", "log"):
      os.makedirs(os.path.join(self.root, sub), mode=0o755)
    key = os.path.join(self.root, "munge", "munge.key")
    with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
      f.write(os.urandom(128))  # what `mungekey -c` writes (1024 bits)
    deadline = time.monotonic() + timeout
    self._spawn("munged", [
        "munged", "--foreground", f"--key-file={key}", f"--socket={self.munge_socket}",
        f"--pid-file={self.root}/munge/munged.pid", f"--log-file={self.log_dir}/munged.log",
        f"--seed-file={self.root}/munge/munged.seed"])
    self._wait(lambda: os.path.exists(self.munge_socket), deadline, "munged's socket")
    self.ctld_port, self.slurmd_port = _free_port(), _free_port()
    while self.slurmd_port == self.ctld_port:
      self.slurmd_port = _free_port()
    # Random, so two clusters' jobs differ: jax.distributed derives its coordinator port
    # from SLURM_JOB_ID, and jobs with the same id on one host would meet at the same port.
    self.first_job_id = random.SystemRandom().randrange(1000, 1_000_000)
    self._write_conf()
    self._spawn("slurmctld", ["slurmctld", "-D", "-f", self.conf])
    self._spawn("slurmd", ["slurmd", "-D", "-f", self.conf, "-N", self.node])
    self._wait(self._node_idle, deadline, f"node {self.node} idle in sinfo")

  def _real_memory(self) -> int:
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, env=self._daemon_env(),
                         timeout=30, check=False).stdout
    m = re.search(r"RealMemory=(\d+)", out)
    return max(100, int(int(m.group(1)) * 0.9)) if m else 1000

  def _write_conf(self) -> None:
    r = self.root
    lines = f"""\
# Generated by tests/sweeps/slurm_cluster.py; everything lives under {r}.
ClusterName=mnv2test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket},cred_expire=5
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={self.log_dir}/slurmctld.log
SlurmdLogFile={self.log_dir}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=sched_interval=1,bf_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp}
KillWait=30
MinJobAge=600
ReturnToService=2
JobRequeue=1
FirstJobId={self.first_job_id}
SlurmdParameters=config_overrides
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self._real_memory()} State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""
    with open(self.conf, "w") as f:
      f.write(lines)

  def _daemon_env(self) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _FOREIGN_ENV.match(k)}
    path = [*env.get("PATH", "").split(os.pathsep), *_SYS_PATH]
    env.update(PATH=os.pathsep.join(p for p in dict.fromkeys(path) if p), SLURM_CONF=self.conf)
    return env

  def _spawn(self, name: str, argv: list[str]) -> None:
    out = open(os.path.join(self.log_dir, f"{name}.stdout"), "wb")
    with out:
      self._procs[name] = subprocess.Popen(
          argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
          env=self._daemon_env(), cwd=self.root, start_new_session=True,
          preexec_fn=_die_with_parent)

  def _node_idle(self) -> bool:
    try:
      res = subprocess.run(["sinfo", "-h", "-N", "-n", self.node, "-o", "%T"], env=self.env,
                           capture_output=True, text=True, timeout=5, check=False)
    except subprocess.TimeoutExpired:  # e.g. someone else took our port: it never answers
      return False
    return res.returncode == 0 and res.stdout.strip() == "idle"

  def _wait(self, ready, deadline: float, what: str) -> None:
    while True:
      for name, proc in self._procs.items():
        if proc.poll() is not None:
          raise SlurmStartError(f"{name} exited with {proc.returncode} while waiting for {what}"
                                f"\n{self.log_tails()}")
      if ready():
        return
      if time.monotonic() > deadline:
        raise SlurmStartError(f"timed out waiting for {what}\n{self.log_tails()}")
      time.sleep(0.1)

  def log_tails(self, lines: int = 25) -> str:
    """The last lines of every daemon log (for error messages)."""
    parts = []
    names = os.listdir(self.log_dir) if os.path.isdir(self.log_dir) else []
    for name in sorted(names, key=lambda n: (n.startswith("munged"), n)):  # munged's last
      parts.append(f"--- {name} ---\n{_tail(os.path.join(self.log_dir, name), lines)}")
    return "".join(parts) or "(no logs)"

  def close(self) -> None:
    """SIGKILL every job process and slurmstepd of this cluster, stop the daemons started
    here (SIGTERM, SIGKILL after 5 s), remove the temp dir. Idempotent."""
    if self._closed:
      return
    self._closed = True
    try:
      self._kill_ours(stepd=True)
      for name in ("slurmd", "slurmctld", "munged"):
        proc = self._procs.get(name)
        if proc is not None and proc.poll() is None:
          proc.terminate()
          try:
            proc.wait(5)
          except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
      self._kill_ours(stepd=True)  # anything started meanwhile
    finally:
      shutil.rmtree(self.root, ignore_errors=True)

  def _end_all_jobs(self, timeout: float = 10.0) -> None:
    """Cancel every job, SIGKILL its processes (so no KillWait), wait until squeue is empty.

    (``scancel --signal=KILL`` is not enough: here it left an ``srun`` step's tasks running.)"""
    try:
      ids = self.run(["squeue", "-h", "-o", "%A"], check=False, timeout=10).stdout.split()
      if not ids:
        return
      self.run(["scancel", *ids], check=False, timeout=10)
      end = time.monotonic() + timeout
      while True:
        self._kill_ours(stepd=False)
        if (time.monotonic() > end or not self.run(["squeue", "-h", "-o", "%A"], check=False,
                                                   timeout=10).stdout.strip()):
          return
        time.sleep(0.1)
    except (OSError, subprocess.SubprocessError):
      pass

  def _kill_ours(self, stepd: bool) -> None:
    """SIGKILL this cluster's job processes: those whose environment has our SLURM_CONF and a
    SLURM_JOB_ID (batch scripts, srun, tasks); with stepd, also our slurmstepd processes (our
    SLURM_CONF, named slurmstepd). Never a daemon (slurmctld's slurmscriptd child has our
    SLURM_CONF too) nor a client started with ``env``: those have neither."""
    marker = f"SLURM_CONF={self.conf}".encode()
    ours = {os.getpid(), *(p.pid for p in self._procs.values())}
    for pid in (int(d) for d in os.listdir("/proc") if d.isdigit()):
      if pid in ours:
        continue
      try:
        with open(f"/proc/{pid}/environ", "rb") as f:
          env = f.read().split(b"\0")
        if marker not in env:
          continue
        is_job = any(v.startswith(b"SLURM_JOB_ID=") for v in env)
        if not is_job and stepd:
          with open(f"/proc/{pid}/comm") as f:
            is_job = f.read().strip() == "slurmstepd"
        if is_job:
          os.kill(pid, signal.SIGKILL)
      except OSError:  # gone, or a zombie
        pass

  def __enter__(self) -> SlurmCluster:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  # ---------------------------------------------------------------- using it

  @property
  def env(self) -> dict[str, str]:
    """Environment for SLURM clients: current os.environ, less inherited SLURM_* & co., plus
    SLURM_CONF and a PATH with /usr/bin and /usr/sbin. A fresh dict on every read."""
    return self._daemon_env()

  def run(self, args: Sequence[str], *, check: bool = True, timeout: float | None = 60,
          **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(args, env=self.env, capture_output=True, text=True, check=check)``; on
    failure with check, raises CommandError (a CalledProcessError showing stdout/stderr)."""
    kwargs.setdefault("env", self.env)
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                         check=False, **kwargs)
    if check and res.returncode != 0:
      raise CommandError(res.returncode, res.args, res.stdout, res.stderr)
    return res

  def sbatch(self, *args: str, **kwargs: Any) -> str:
    """``sbatch --parsable *args`` -> the job id (for an array, the array job id)."""
    out = self.run(["sbatch", "--parsable", *args], **kwargs).stdout.strip()
    return out.split(";")[0]  # --parsable prints "<id>[;<cluster>]"

  def jobs(self, job_id: str | int) -> dict[str, JobInfo]:
    """What ``scontrol show job`` knows now: {key: JobInfo}, every array task of an array job
    (keys "7_0", ...); {} if the job is unknown (never existed, or purged after MinJobAge)."""
    res = self.run(["scontrol", "-o", "show", "job", str(job_id)], check=False)
    if res.returncode != 0:
      if "Invalid job id" in res.stderr:
        return {}
      raise CommandError(res.returncode, res.args, res.stdout, res.stderr)
    infos = [_job_info(parse_key_values(line)) for line in res.stdout.splitlines() if line]
    return {i.key: i for i in infos}

  def jobcomp_records(self, job_id: str | int | None = None) -> list[JobInfo]:
    """The jobcomp file's records in order (several per job if it was requeued), for one
    job (its JobId, or for an array job its ArrayJobId) or all."""
    try:
      with open(self.jobcomp) as f:
        lines = [parse_key_values(line) for line in f if line.strip()]
    except FileNotFoundError:
      return []
    if job_id is not None:
      j = str(job_id)
      lines = [r for r in lines if j in (r.get("JobId"), r.get("ArrayJobId"))]
    return [_job_info(r) for r in lines]

  def wait_job(self, job_id: str | int, timeout: float = 60.0,
               poll: float = 0.2) -> dict[str, JobInfo]:
    """Wait until the job and every array task of it have left squeue; return their final
    JobInfo by key (from scontrol; from the jobcomp file's last record per task if scontrol
    has forgotten them; {} if neither knows the job). TimeoutError, with the states, if not done
    in time."""
    deadline = time.monotonic() + timeout
    while True:
      infos = self.jobs(job_id)
      if infos and not any(i.active for i in infos.values()):
        return infos
      if not infos:
        return {i.key: i for i in self.jobcomp_records(job_id)}
      if time.monotonic() > deadline:
        raise TimeoutError(f"job {job_id} still active after {timeout} s: "
                           + ", ".join(f"{k}={i.state}" for k, i in infos.items()))
      time.sleep(poll)

  def wait_state(self, job_id: str | int, state: str = "RUNNING", count: int = 1,
                 timeout: float = 60.0, poll: float = 0.1) -> dict[str, JobInfo]:
    """Wait until at least ``count`` of the job's tasks are in ``state``; return jobs()."""
    deadline = time.monotonic() + timeout
    while True:
      infos = self.jobs(job_id)
      if sum(i.state == state for i in infos.values()) >= count:
        return infos
      if time.monotonic() > deadline:
        raise TimeoutError(f"job {job_id}: not {count} task(s) {state} after {timeout} s: "
                           + ", ".join(f"{k}={i.state}" for k, i in infos.items()))
      time.sleep(poll)

  def cancel_all(self, timeout: float = 10.0) -> None:
    """Cancel every job and SIGKILL its processes (e.g. between tests), wait until squeue is
    empty."""
    self._end_all_jobs(timeout)


if __name__ == "__main__":
  t0 = time.monotonic()
  with SlurmCluster.start() as c:
    print(f"up in {time.monotonic() - t0:.2f} s; in another shell:\n"
          f"  export SLURM_CONF={c.conf}\n(logs: {c.log_dir}) Ctrl-C to stop", flush=True)
    try:
      signal.pause()
    except KeyboardInterrupt:
      pass
    t0 = time.monotonic()
  print(f"down in {time.monotonic() - t0:.2f} s", file=sys.stderr)

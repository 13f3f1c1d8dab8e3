"""Training on a busy machine: wall time and CPU time per step, alone and beside a competitor.

Why: on a 2-core machine shared with other jobs, `ese run`'s epochs were seen to take >10x their
quiet time, with about 4x more CPU time per epoch -- more than a fair share of the cores can
explain. The LSTM's training step is hundreds of small parallel regions (one per gate product per
time step, forward and backward); with OpenMP's default wait policy a thread that reaches a
barrier spins (burning its core) while its partner is descheduled by the competitor, so CPU time
grows with the competitor and wall time with it.

Each configuration runs in a fresh child process (OpenMP reads its environment once, at load):

- threads: torch intra-op threads (1, 2, or ``auto``: the count ``ese`` chooses with
  ``train.threads = 0``, from the load the child sees when it starts);
- wait: the OpenMP wait policy (``active``: libgomp's default spinning; ``passive``:
  ``OMP_WAIT_POLICY=PASSIVE``, threads sleep at barriers);
- beside: 0 = alone, 1 = one competing single-threaded busy process pinned nowhere.

Reported per configuration: wall seconds and CPU seconds (user + system of the child) per
training step of the ``default`` shape (256 cells, projection 128, 2 layers, 16 x 200 frames),
the worst of ``--repeats`` runs (this machine is shared; a figure that holds must hold in the slow
run). Run: ``python benchmarks/bench_busy_training.py [--steps 4] [--repeats 3] [--policies 2,1,auto]
[--waits active,passive,spin1000] [--beside 0,1] [--json out.json]``; each row also gives the counts
``auto`` chose in its runs and the 1-minute load average when the row ended.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, os, resource, sys, time
import torch
import torch.nn.functional as F
from ese.config import ModelConfig
from ese.model.lstmp import AcousticModel
steps = int(sys.argv[2])
if sys.argv[1] == "auto":  # what ese does with train.threads = 0
    from ese.threads import auto_threads
    choice = auto_threads(torch.get_num_threads())
    threads, why = choice.count, choice.reason
else:
    threads, why = int(sys.argv[1]), "as given"
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = ModelConfig(input_dim=153, hidden=256, proj=128, layers=2)
model = AcousticModel(cfg)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(16, 200, cfg.input_dim)
y = torch.randint(0, cfg.num_classes, (16, 200))
def step():
    opt.zero_grad()
    logits = model(x)[0]
    loss = F.cross_entropy(logits.reshape(-1, cfg.num_classes), y.reshape(-1))
    loss.backward()
    opt.step()
step()  # warm-up
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range(steps):
    step()
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({"wall": (t1 - t0) / steps, "cpu": cpu / steps, "threads": threads, "why": why}))
"""

BUSY = "import time\nwhile True:\n    pass\n"


def run_child(threads: int | str, wait: str, steps: int) -> dict:
    env = dict(os.environ)
    for key in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(key, None)
    if wait == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif wait.startswith("spin"):  # spin this many polls, then sleep (libgomp's GOMP_SPINCOUNT)
        env["GOMP_SPINCOUNT"] = wait[len("spin"):]
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(steps)], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(threads: int | str, wait: str, beside: int, steps: int, repeats: int) -> dict:
    competitors = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(beside)]
    try:
        time.sleep(0.5 if beside else 0.0)
        runs = [run_child(threads, wait, steps) for _ in range(repeats)]
    finally:
        for p in competitors:
            p.kill()
            p.wait()
    return {"wall": max(r["wall"] for r in runs), "cpu": max(r["cpu"] for r in runs),
            "chosen": [r["threads"] for r in runs], "why": [r["why"] for r in runs]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--waits", default="active,passive",
                    help="wait policies of the 2-thread rows: active, passive, spinN (GOMP_SPINCOUNT=N)")
    ap.add_argument("--policies", default="2,1,auto",
                    help="thread policies: a count, or auto (ese's train.threads = 0: the cores "
                         "other processes leave free, chosen in each child); --waits applies to 2")
    ap.add_argument("--beside", default="0,1", help="competing busy processes, one run each")
    args = ap.parse_args()
    rows = []
    configs = []
    for policy in args.policies.split(","):
        waits = args.waits.split(",") if policy == "2" else ["active"]
        configs += [(policy if policy == "auto" else int(policy), w) for w in waits]
    print(f"machine: {os.cpu_count()} CPUs, load before: {os.getloadavg()[0]:.2f}")
    print(f"{'threads':>7} {'wait':>8} {'beside':>6} {'wall s/step':>11} {'cpu s/step':>10} "
          f"{'chosen':>7} {'load 1m':>7}")
    for beside in [int(b) for b in args.beside.split(",")]:
        for threads, wait in configs:
            r = measure(threads, wait, beside, args.steps, args.repeats)
            load = os.getloadavg()[0]
            rows.append({"threads": threads, "wait": wait, "beside": beside, "load_1m": load, **r})
            chosen = ",".join(str(c) for c in r["chosen"])
            print(f"{threads:>7} {wait:>8} {beside:>6} {r['wall']:>11.3f} {r['cpu']:>10.3f} "
                  f"{chosen:>7} {load:>7.2f}", flush=True)
            if threads == "auto":
                print(f"        auto's reasons: {'; '.join(sorted(set(r['why'])))}", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

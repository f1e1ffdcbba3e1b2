#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: storage_benchmark
short_description: Measure each storage tier's throughput, IOPS and latency with fio (or dd), against a baseline
version_added: 0.1.0
description:
  - "The specification's performance test: per target (a mount of a tier) a sequential write
    (C(seq_write)), random 4k reads with a queue depth of 32 (C(rand_read), hot tier) and a
    sequential read (C(seq_read), NAS), all with direct I/O, by C(fio --output-format=json): bytes per
    second, IOPS and completion latency percentiles (50, 95, 99, 99.9). Without fio (O(tool=dd) or
    O(tool=auto) on a host without it) the sequential tests use C(dd oflag=direct)/C(iflag=direct) and
    the random reads are skipped."
  - "A target is refused, and nothing is written to it, when it is above O(warning) percent used,
    when the test file would not fit or would take it above O(warning), when it must be a mount point
    (C(require_mount)) and is not, or when it does not answer within O(probe_timeout) (a dead NFS server)."
  - "The test file is C(<directory>/.jts-benchmark-<run id>.tmp), created by this module (C(O_EXCL),
    C(O_NOFOLLOW), the directory reached from C(/) without following symlinks) and handed to fio or dd as
    its open descriptor (C(/proc/self/fd/N)): a user who can write to the directory cannot point the test
    at another file. The tools run without a shell, die with this module (C(PR_SET_PDEATHSIG)) and are
    killed after O(timeout) seconds. The file is emptied and removed after the target's tests, also on
    SIGTERM, SIGINT or SIGHUP; after a SIGKILL, the next run removes it (root's regular files of that
    name pattern in the targets' directories, under the run lock)."
  - "Runs take a lock on the targets' trees in O(lock_dir) (the locks tier_migrate takes), so a
    benchmark and a move on the same mount, or two benchmarks, never overlap."
  - "Each run's results are saved in O(state_dir) as C(<run id>.json). Every result is compared with the
    same test of the first saved run that had the same tool and settings (the baseline); a figure that
    moved by more than O(change_threshold) percent is called worse or better (throughput and IOPS:
    higher is better; latency: lower is better)."
  - "The figures go to a node_exporter textfile (O(textfile)), written atomically (a temporary file in
    the same directory, then renamed), in base units (bytes per second, seconds)."
  - O(state=cleaned) only removes test files left by killed runs.
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The targets are checked (mount, space) and the commands that would run are returned in RV(plan); nothing is run, written or removed.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - fio (Debian and RedHat package C(fio)) for the random reads and latency percentiles; dd (coreutils) otherwise.
  - Linux (C(/proc/self/fd), C(/proc/self/mountinfo), C(prctl)).
options:
  targets:
    description:
      - What to measure (M(jts.tiered_storage.storage_benchmark)'s playbook derives them from the tier
        variables with the C(jts.tiered_storage.layout_benchmark_targets) filter).
    type: list
    elements: dict
    required: true
    suboptions:
      tier:
        description: The tier, for the table, the metrics and the baseline key.
        type: str
        required: true
      name:
        description: The target's name within its tier (the LV, C(warm), C(nas)).
        type: str
        required: true
      mount:
        description: The mount whose space is checked; with O(targets[].require_mount) it must be a mount point.
        type: path
        required: true
      directory:
        description: Where the test file goes, on O(targets[].mount); default O(targets[].mount).
        type: path
      tests:
        description: The tests, run in the order seq_write, rand_read, seq_read; the reads read what the write wrote, so a read adds the write.
        type: list
        elements: str
        choices: [seq_write, rand_read, seq_read]
        required: true
      require_mount:
        description: Refuse the target when O(targets[].mount) is not a mount point (a NAS that is not mounted).
        type: bool
        default: true
      warning:
        description: This target's threshold in percent; default O(warning).
        type: float
  state:
    description:
      - V(measured) runs the tests.
      - V(cleaned) only removes the test files that killed runs left in the targets' directories.
    type: str
    choices: [measured, cleaned]
    default: measured
  tool:
    description: V(auto) uses fio when it is installed, dd otherwise.
    type: str
    choices: [auto, fio, dd]
    default: auto
  seq_size:
    description: Bytes of the sequential write (and of the sequential read), for example V(1G) (the specification's dd of 1 GB).
    type: str
    default: 1G
  seq_block_size:
    description: Block size of the sequential tests (queue depth 1, like dd).
    type: str
    default: 1M
  rand_size:
    description: Bytes the random reads cover (fio C(--size)); never more than the write wrote.
    type: str
    default: 500M
  rand_block_size:
    description: Block size of the random reads.
    type: str
    default: 4k
  iodepth:
    description: Queue depth of the random reads (fio C(--iodepth), C(libaio)).
    type: int
    default: 32
  runtime:
    description: Seconds after which fio stops a test even when it has not moved its size (fio C(--runtime)).
    type: int
    default: 30
  timeout:
    description: Seconds after which any test (fio or dd) is killed and reported as failed.
    type: int
    default: 300
  warning:
    description: Percent used above which a mount is refused, also when the test file would take it there (the health check's warning level).
    type: float
    default: 80
  change_threshold:
    description: Percent by which a figure must differ from the baseline to be called worse or better.
    type: float
    default: 20
  state_dir:
    description: Where each run's results are kept (a directory of root's alone, created 0700).
    type: path
    default: /var/lib/jts/benchmark
  textfile:
    description: The node_exporter textfile (must end in C(.prom)); empty for none. Its directory must exist.
    type: str
    default: /var/lib/prometheus/node-exporter/jts_benchmark.prom
  lock_dir:
    description: Directory of the run locks (shared with tier_migrate).
    type: path
    default: /run/jts
  probe_timeout:
    description: Seconds a target may take to answer the mount and space checks (a dead NFS server does not).
    type: int
    default: 10
notes:
  - The tests load the disks that the services use; run them when the host is quiet.
  - "A test is bounded by O(runtime) (fio) and by O(timeout) (both); the whole run by their sum over the
    tests. The space a test needs is the larger of O(seq_size) and O(rand_size), on one target at a time."
seealso:
  - name: Benchmark guide
    description: The playbook, its variables, the figures and how to read a baseline comparison.
    link: https://github.com/jts/tiered_storage/blob/main/docs/benchmark.md
"""

EXAMPLES = r"""
- name: Benchmark the hot LV of postgres and the NAS
  jts.tiered_storage.storage_benchmark:
    targets:
      - {tier: hot, name: postgres, mount: /var/lib/postgresql, tests: [seq_write, rand_read]}
      - {tier: cold, name: nas, mount: /mnt/synology, directory: /mnt/synology/jts, tests: [seq_write, seq_read]}
  register: bench

- name: Show the table
  ansible.builtin.debug:
    msg: "{{ bench.table }}"

- name: Remove what a killed run left
  jts.tiered_storage.storage_benchmark:
    state: cleaned
    targets: "{{ targets }}"
"""

RETURN = r"""
run_id:
  description: This run's id (in the test file's and the results file's names).
  returned: always
  type: str
  sample: 20261123T023000Z-3f9a0c
tool:
  description: fio or dd.
  returned: when O(state=measured)
  type: str
  sample: fio
results:
  description:
    - One per target and test, with C(tier), C(name), C(mount), C(directory), C(fstype), C(test), C(tool),
      C(status) (V(ok), V(failed), V(refused), V(skipped), V(planned) in check mode), C(reason), C(signature)
      (what a baseline must share), C(command) and C(figures) (C(bytes), C(seconds),
      C(bandwidth_bytes_per_second), C(iops), C(latency_mean_seconds), C(latency_p50_seconds),
      C(latency_p95_seconds), C(latency_p99_seconds), C(latency_p99_9_seconds); latencies are null with dd).
  returned: when O(state=measured)
  type: list
  elements: dict
  sample: [{"tier": "hot", "name": "postgres", "mount": "/var/lib/postgresql", "test": "rand_read", "tool": "fio",
            "status": "ok", "figures": {"bandwidth_bytes_per_second": 480000000.0, "iops": 117187.5,
            "latency_p99_seconds": 0.00224}}]
table:
  description: The results as a table (MB/s are 10^6 bytes per second; latencies in milliseconds).
  returned: when O(state=measured)
  type: str
  sample: "tier  target    mount                test       tool   MB/s  ..."
plan:
  description: The commands of the tests (the test file shown by its path), run or, in check mode, that would run.
  returned: when O(state=measured)
  type: list
  elements: dict
  sample: [{"target": "hot/postgres", "test": "rand_read", "command": ["/usr/bin/fio", "--name=jts-rand-read", "..."]}]
comparisons:
  description:
    - Per C(tier/name/test), C(baseline_run) (the run id compared with, null when this run is the baseline)
      and C(changes) (C(figure), C(label), C(higher_is_better), C(baseline), C(now), C(change_percent),
      C(verdict) V(worse), V(better) or empty within O(change_threshold)).
  returned: when O(state=measured) and not in check mode
  type: dict
  sample: {"hot/postgres/rand_read": {"baseline_run": "20261101T023000Z-0a1b2c", "changes": []}}
changes:
  description: The comparison as text, one line per figure.
  returned: when O(state=measured) and not in check mode
  type: str
  sample: "hot/postgres/rand_read IOPS: 117188 -> 70000 (-40.3 %; higher is better)  WORSE than the baseline of 20261101T023000Z-0a1b2c"
worse:
  description: The figures worse than their baseline beyond O(change_threshold), one line each.
  returned: when O(state=measured) and not in check mode
  type: list
  elements: str
  sample: ["hot/postgres/rand_read IOPS -40.3 % (higher is better)"]
refused:
  description: Why targets were not benchmarked (their tests have C(status=refused)).
  returned: when O(state=measured)
  type: list
  elements: str
  sample: ["/data/warm-storage (warm tier, warm) is 85.0 % used, above its warning threshold of 80 % ..."]
problems:
  description: The refusals and the failed tests, one line each; the module fails when there is one (after saving what it measured).
  returned: when O(state=measured)
  type: list
  elements: str
  sample: ["hot/redis seq_write: killed after timeout=300s"]
cleaned:
  description: Test files of earlier runs removed (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: ["/var/lib/postgresql/.jts-benchmark-20261122T023000Z-77aa01.tmp"]
left_alone:
  description: Files named like test files that are not root's regular files, left in place.
  returned: always
  type: list
  elements: str
  sample: []
result_file:
  description: Where this run's results were saved (null when nothing was measured).
  returned: when O(state=measured) and not in check mode
  type: str
  sample: /var/lib/jts/benchmark/20261123T023000Z-3f9a0c.json
textfile:
  description: C(path), C(written) and C(error) of the node_exporter textfile.
  returned: when O(state=measured), O(textfile) is set and not in check mode
  type: dict
  sample: {"path": "/var/lib/prometheus/node-exporter/jts_benchmark.prom", "written": true}
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: "5 tests ok on 3 targets; 1 figure worse than its baseline"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark import TESTS
from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark_run import Benchmark
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, fail

TARGET_SPEC = dict(
    tier=dict(type="str", required=True),
    name=dict(type="str", required=True),
    mount=dict(type="path", required=True),
    directory=dict(type="path"),
    tests=dict(type="list", elements="str", choices=list(TESTS), required=True),
    require_mount=dict(type="bool", default=True),
    warning=dict(type="float"),
)
ARGUMENT_SPEC = dict(
    targets=dict(type="list", elements="dict", required=True, options=TARGET_SPEC),
    state=dict(type="str", choices=["measured", "cleaned"], default="measured"),
    tool=dict(type="str", choices=["auto", "fio", "dd"], default="auto"),
    seq_size=dict(type="str", default="1G"),
    seq_block_size=dict(type="str", default="1M"),
    rand_size=dict(type="str", default="500M"),
    rand_block_size=dict(type="str", default="4k"),
    iodepth=dict(type="int", default=32),
    runtime=dict(type="int", default=30),
    timeout=dict(type="int", default=300),
    warning=dict(type="float", default=80),
    change_threshold=dict(type="float", default=20),
    state_dir=dict(type="path", default="/var/lib/jts/benchmark"),
    textfile=dict(type="str", default="/var/lib/prometheus/node-exporter/jts_benchmark.prom"),
    lock_dir=dict(type="path", default="/run/jts"),
    probe_timeout=dict(type="int", default=10),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        bench = Benchmark(module)
        result = bench.clean() if module.params["state"] == "cleaned" else bench.measure()
    except JtsError as exc:
        fail(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: clickhouse_tiering
short_description: Age ClickHouse tables from the hot volume to the cold one, verified, never hanging on a dead NAS
version_added: 0.1.0
description:
  - "Per table of O(tables): with O(tables[].ttl=true) (the default) sets the table's TTL move rules,
    C(ALTER TABLE ... MODIFY TTL <column> + INTERVAL N DAY TO VOLUME 'cold') (30 days by default), only
    when the table's TTL, as the server prints it in C(system.tables.engine_full), differs from them.
    The module owns the move rules (C(TO VOLUME), C(TO DISK)) of the tables it is given: its rules
    replace the others; every other TTL element (C(DELETE), C(GROUP BY), C(RECOMPRESS)) is kept."
  - "With O(tables[].ttl=false) the table gets no TTL: every partition whose newest row (from the
    partition key's date range in C(system.parts)) is older than the rule is moved with
    C(ALTER TABLE ... MOVE PARTITION ID ... TO VOLUME|DISK ...) (C(MOVE PART) for the lagging parts of a
    partition that is partly on a later volume already), and C(system.parts) is read back to verify
    that every part landed."
  - "Moves only go forward through the policy's volumes: a rule to the first (hot) volume is refused,
    and several rules must reach later volumes as they get older (ClickHouse issue 49098: a
    C(TO VOLUME 'hot') rule moves parts back and forth). Parts already on a later volume are never moved."
  - "After the changes the module waits up to O(wait_timeout) for the server's background moves of parts
    already due, then reports per table the parts still before their target volume (RV(tables[].pending)),
    the bytes, parts and rows per disk of the table and of the whole server, and the part on the hot volume
    with the oldest data (RV(oldest_hot_part))."
  - "Never a hang: the module speaks to the server's HTTP interface with the Python standard library,
    every request has a hard deadline (O(timeout), O(move_timeout), O(probe_timeout)) and its own query id,
    which the module asks the server to C(KILL) when the deadline passes. Before the first change the cold
    side is probed: the O(probe_paths) from the managed host in a forked child, or C(system.disks) on the
    server, which hangs when one of its disks sits on a dead NFS mount (ClickHouse issue 65552). A probe or
    a request that gets no answer fails the run at once with a message that says so."
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the catalogue and the parts, lists the statements it would run (RV(statements)); runs none and waits for nothing.
  diff_mode:
    support: full
    details: The TTL of each table before and after, and the partition moves.
  platform:
    platforms: posix
requirements:
  - A ClickHouse server with storage policies (19.15 or later) and its HTTP interface reachable from the managed host.
options:
  url:
    description:
      - The server's HTTP interface, C(http://) or C(https://). No user, password or query string in it.
    type: str
    default: http://127.0.0.1:8123
  user:
    description: The ClickHouse user (sent as C(X-ClickHouse-User)); it needs C(SELECT) on the C(system) tables and C(ALTER) on the tables.
    type: str
    default: default
  password:
    description: Its password (sent as C(X-ClickHouse-Key), never in the URL, never in the output).
    type: str
  validate_certs:
    description: Check the server's TLS certificate with C(https://).
    type: bool
    default: true
  policy:
    description: The storage policy the tables use (the one the P(jts.tiered_storage.clickhouse_storage#role) role renders).
    type: str
    default: hot_cold
  set_policy:
    description:
      - Switch a table that uses another storage policy to O(policy) (C(ALTER TABLE ... MODIFY SETTING storage_policy)).
      - The server allows it only when O(policy) keeps every volume and disk of the table's policy (C(default) keeps the disk C(default)).
      - When false, such a table fails the run with the statement to run.
    type: bool
    default: false
  days:
    description: The age in days after which a table's parts go to O(volume), for tables without O(tables[].days) or O(tables[].moves).
    type: int
    default: 30
  volume:
    description: The volume parts go to, for tables without O(tables[].volume), O(tables[].disk) or O(tables[].moves).
    type: str
    default: cold
  tables:
    description: The tables to tier.
    type: list
    elements: dict
    required: true
    suboptions:
      database:
        description: The table's database.
        type: str
        default: default
      table:
        description: The table's name (a C(MergeTree) family table).
        type: str
        required: true
      column:
        description:
          - The C(Date) or C(DateTime) column the TTL ages rows by (a plain column name). Required with O(tables[].ttl=true).
          - Not used with O(tables[].ttl=false), where the partition key's date range gives each partition's age.
        type: str
      ttl:
        description:
          - V(true) sets TTL move rules and lets the server move parts; V(false) moves old partitions with C(MOVE PARTITION) and verifies them.
        type: bool
        default: true
      days:
        description: Age in days after which parts move (default O(days)).
        type: int
      volume:
        description: The volume they move to (default O(volume)).
        type: str
      disk:
        description: A disk to move to instead of a volume.
        type: str
      moves:
        description:
          - Several moves instead of O(tables[].days) and O(tables[].volume), e.g. to C(cold) after 30 days and to C(nas) after 365.
          - Each goes to a later volume than the one before.
        type: list
        elements: dict
        suboptions:
          days:
            description: Age in days.
            type: int
            required: true
          volume:
            description: Target volume.
            type: str
          disk:
            description: Target disk (instead of a volume).
            type: str
  probe_paths:
    description:
      - Directories of the cold disks (the NAS disk above all) to probe from the managed host, each with a C(statvfs) in a
        forked child that is killed after O(probe_timeout), before the first change.
      - When empty, the module asks the server for C(system.disks) within O(probe_timeout) instead; on a dead NFS disk that
        query fails the run in time but may stay stuck in the server until the mount returns (ClickHouse issue 65552).
    type: list
    elements: path
    default: []
  timeout:
    description: Seconds each catalogue query (C(system.tables), C(system.parts), C(system.storage_policies)) may take in total.
    type: float
    default: 10
  probe_timeout:
    description: Seconds the cold-side probe may take.
    type: float
    default: 5
  move_timeout:
    description: Seconds each C(ALTER TABLE) (TTL change, C(MOVE PARTITION), policy switch) may take; a move copies the partition's data.
    type: float
    default: 1800
  wait_timeout:
    description: Seconds to wait, after the changes, for the server's background moves of the parts already due; V(0) does not wait.
    type: float
    default: 120
notes:
  - "Every request is a C(POST) with the statement as its body and the settings C(max_execution_time), C(wait_end_of_query)
    and C(query_id) as URL parameters; answers are read in the C(JSON) format."
  - "Age is compared with the server's clock (C(now())), as its own TTL moves are."
  - Replicated tables are changed on the replica the module speaks to; TTL changes replicate, partition moves are local.
seealso:
  - name: ClickHouse hot/cold tiering
    description: The storage policy, the vendor caveats and what the collection does about them.
    link: https://github.com/jts/tiered_storage/blob/main/docs/databases.md
"""

EXAMPLES = r"""
- name: Age the market data to the warm tier after 30 days (TTL)
  jts.tiered_storage.clickhouse_tiering:
    password: "{{ clickhouse_tiering_password }}"
    probe_paths: [/data/warm-storage/clickhouse]
    tables:
      - database: market
        table: ticks
        column: trade_date

- name: Ticks to warm after 30 days, to the NAS after a year
  jts.tiered_storage.clickhouse_tiering:
    password: "{{ clickhouse_tiering_password }}"
    probe_paths: [/data/warm-storage/clickhouse, /mnt/synology/jts/clickhouse]
    tables:
      - database: market
        table: ticks
        column: trade_date
        moves:
          - {days: 30, volume: cold}
          - {days: 365, volume: nas}

- name: Move old partitions of a table that must not get a TTL, and verify them
  jts.tiered_storage.clickhouse_tiering:
    password: "{{ clickhouse_tiering_password }}"
    tables:
      - database: market
        table: orders_archive
        ttl: false
        days: 90
"""

RETURN = r"""
changed:
  description: Whether a statement ran (in check mode, would run).
  returned: always
  type: bool
statements:
  description: The C(ALTER TABLE) statements run (in check mode, that would run), in order.
  returned: always
  type: list
  elements: str
  sample: ["ALTER TABLE `market`.`ticks` MODIFY TTL `trade_date` + INTERVAL 30 DAY TO VOLUME 'cold'"]
server_version:
  description: The server's version.
  returned: when the server answered
  type: str
  sample: 24.8.4.13
policy:
  description: The storage policy and its volumes in order, each with its disks.
  returned: when the server answered
  type: dict
  sample: {"name": "hot_cold", "volumes": [{"name": "hot", "disks": ["default"]}, {"name": "cold", "disks": ["warm"]}]}
tables:
  description: One entry per table of O(tables), in order.
  returned: always
  type: list
  elements: dict
  contains:
    database:
      description: The database.
      type: str
    table:
      description: The table.
      type: str
    mode:
      description: V(ttl) or V(move).
      type: str
    rules:
      description: The moves, oldest last, each C(days), C(kind) (C(volume) or C(disk)) and C(name).
      type: list
      elements: dict
    storage_policy:
      description: The policy the table used when the run began.
      type: str
    policy_statement:
      description: The statement that switches the table to O(policy).
      type: str
      returned: when the table used another policy
    ttl_before:
      description: The table's TTL elements as the server printed them before the run.
      type: list
      elements: str
      returned: in V(ttl) mode
    ttl_after:
      description: The TTL elements after the run (in check mode, that it would set).
      type: list
      elements: str
      returned: in V(ttl) mode
    ttl_changed:
      description: Whether the TTL was (would be) changed.
      type: bool
      returned: in V(ttl) mode
    ttl_removed:
      description: Move elements that the module's rules replaced (another age, target or column, a rule to hot).
      type: list
      elements: str
      returned: when there were any
    moves:
      description:
        - In V(move) mode, the partitions moved (would be moved), each with C(partition_id), C(parts), C(bytes),
          C(from) (disks) and C(target), and C(verified) once C(system.parts) showed them all on the target.
      type: list
      elements: dict
    undated_partitions:
      description: Partitions whose partition key has no date, so they were not moved (V(move) mode).
      type: list
      elements: str
      returned: when there were any
    disks:
      description: The table's active parts per disk, each C(parts), C(bytes), C(rows).
      type: dict
      sample: {"default": {"parts": 4, "bytes": 73400320, "rows": 1200000}, "warm": {"parts": 12, "bytes": 230686720, "rows": 3600000}}
    pending:
      description: Parts older than a rule still before its target volume, each C(part), C(partition_id), C(disk), C(target).
      type: list
      elements: dict
disks:
  description: All active parts of the server per disk, each C(volume) (in O(policy), else null), C(parts), C(bytes), C(rows).
  returned: when the run got that far
  type: dict
  sample: {"default": {"volume": "hot", "parts": 40, "bytes": 734003200, "rows": 12000000}}
oldest_hot_part:
  description:
    - The part on the policy's first (hot) volume with the oldest newest row, over the tables of O(tables);
      null when there is none or the server gives no dates. C(newest_row) is that part's newest row in UTC,
      C(newest_row_timestamp) the same as a Unix time, C(age_seconds) and C(age_days) its age at the run.
  returned: when the run got that far
  type: dict
  sample:
    database: market
    table: ticks
    part: 202611_1_9_2
    newest_row: "2026-11-27T00:00:00Z"
    newest_row_timestamp: 1795737600
    age_seconds: 95400
    age_days: 1.1
msg:
  description: A one-line summary, or what failed.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_http import (
    ClickHouseError,
    ClickHouseHTTP,
    parse_url,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_report import diff_of, summary
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_rules import TieringError, normalise_tables
from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_tiering import Tiering
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import statvfs_with_timeout

MOVE_SPEC = dict(days=dict(type="int", required=True), volume=dict(type="str"), disk=dict(type="str"))
TABLE_SPEC = dict(
    database=dict(type="str", default="default"),
    table=dict(type="str", required=True),
    column=dict(type="str"),
    ttl=dict(type="bool", default=True),
    days=dict(type="int"),
    volume=dict(type="str"),
    disk=dict(type="str"),
    moves=dict(type="list", elements="dict", options=MOVE_SPEC, mutually_exclusive=[("volume", "disk")]),
)
ARGUMENT_SPEC = dict(
    url=dict(type="str", default="http://127.0.0.1:8123"),
    user=dict(type="str", default="default"),
    password=dict(type="str", no_log=True),
    validate_certs=dict(type="bool", default=True),
    policy=dict(type="str", default="hot_cold"),
    set_policy=dict(type="bool", default=False),
    days=dict(type="int", default=30),
    volume=dict(type="str", default="cold"),
    tables=dict(
        type="list",
        elements="dict",
        required=True,
        options=TABLE_SPEC,
        mutually_exclusive=[("volume", "disk"), ("moves", "days"), ("moves", "volume"), ("moves", "disk")],
    ),
    probe_paths=dict(type="list", elements="path", default=[]),
    timeout=dict(type="float", default=10),
    probe_timeout=dict(type="float", default=5),
    move_timeout=dict(type="float", default=1800),
    wait_timeout=dict(type="float", default=120),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = dict(module.params)
    for key in ("timeout", "probe_timeout", "move_timeout"):
        if params[key] <= 0:
            module.fail_json(msg="%s: %g must be more than 0 seconds" % (key, params[key]))
    if params["wait_timeout"] < 0:
        module.fail_json(msg="wait_timeout: %g must be 0 or more" % params["wait_timeout"])
    try:
        params["tables"] = normalise_tables(params)
        parse_url(params["url"])
        client = ClickHouseHTTP(
            params["url"], params["user"], params["password"], validate_certs=params["validate_certs"]
        )
    except (ValueError, ClickHouseError) as exc:
        fail(module, exc)
    tiering = Tiering(client, params, check_mode=module.check_mode, probe=statvfs_with_timeout)
    try:
        result = tiering.run()
    except TieringError as exc:
        result = dict(tiering.result)
        for warning in result.pop("warnings", []):
            module.warn(warning)
        fail(module, exc, **result)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    result["msg"] = summary(result, module.check_mode)
    if module._diff:
        result["diff"] = diff_of(result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Creating a snapshot set (lvm_snapshot state=present): all the snapshots or none.

Standard library only, Python 3.8. The order: plan (room for the whole set), pre-hook, bring the
consistency groups to a consistent state (``_consistency``: PostgreSQL backup mode, fsfreeze),
lvcreate each snapshot, release the groups, roll back what this call created if anything failed,
post-hook. Signals are held off while the groups are held (``_consistency.SignalGuard``). Used
by ``_lvm_snapshot.SnapshotManager.present``.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils import _consistency
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm import SnapshotError
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_plan import plan_set
from ansible_collections.jts.tiered_storage.plugins.module_utils._lvm_snapshot_rows import finding


def _attach(result, plan, states):
    """Give each planned snapshot its ``consistency`` and the result the per-origin map."""
    for item in plan:
        item["consistency"] = states.get(item["origin"]) or _consistency.empty_state(
            "none", "crash", _consistency.NO_METHOD
        )
    result["consistency"] = dict((item["origin"], item["consistency"]) for item in plan)


def _group_finding(vg, group, state, text):
    """The warning of a consistency group that could not be (fully) released or held."""
    names = ", ".join(group["origins"])
    if state["mode"] == "crash":
        message = "consistency (%s) of %s: %s; the snapshot is crash-consistent only" % (group["method"], names, text)
    else:
        message = "consistency (%s) of %s: %s" % (group["method"], names, text)
    return finding("warning", vg, ",".join(group["origins"]), group["origins"][0], message)


def _pre_hook(cmds, hooks, pre_hook, hook_timeout, result):
    try:
        hooks["pre"] = cmds.run_hook("pre_hook", pre_hook, hook_timeout)
    except SnapshotError as exc:
        hooks["pre"] = exc.details.pop("hook")
        exc.msg += "; no snapshot created"
        exc.details.update(result, changed=False, created=[])
        raise exc


class _SetRun:
    """One held creation: acquire the holders, lvcreate the plan, release; records the outcome."""

    def __init__(self, cmds, vg, plan, groups):
        self.cmds, self.vg, self.plan = cmds, vg, plan
        self.created, self.held, self.findings = [], [], []
        self.failure = None
        self.stage_failed = False
        self.states = _consistency.planned(
            [g for g in groups if g["method"] == "none"], [item["origin"] for item in plan]
        )

    def run(self, holders):
        with _consistency.SignalGuard() as guard:
            self._acquire(holders)
            if self.failure is None:
                self._create()
            guard.block()
            self._release()
        if guard.pending is not None and self.failure is None:
            self.failure = SnapshotError("interrupted by signal %d while the consistency was released" % guard.pending)

    def _acquire(self, holders):
        try:
            for group, holder in holders:
                holder.acquire()
                self.held.append((group, holder))
        except (_consistency.ConsistencyError, _consistency.Interrupted) as exc:
            self.failure = SnapshotError("%s; no snapshot created" % exc)
            self.stage_failed = True

    def _create(self):
        try:
            for item in self.plan:
                self.failure = self.cmds.create(self.vg, item)
                if self.failure is not None:
                    # lvcreate can fail half-way ("Aborting. Manual intervention required.") and leave
                    # the LV it was making: this call's name, holding nothing; rolled back with the rest.
                    # Not when the name was taken meanwhile by someone else: that LV is theirs.
                    taken = "already exists" in self.failure.msg
                    if not taken and self.cmds.exists(self.vg, item["name"]):
                        self.failure.msg += "; lvcreate left %s/%s behind" % (self.vg, item["name"])
                        self.created.append(item)
                    break
                self.created.append(item)
        except _consistency.Interrupted as exc:
            self.failure = SnapshotError("%s while the snapshots were created" % exc)

    def _release(self):
        vg = self.vg
        for group, holder in self.held:
            state, text = holder.release(self.failure is None)
            self.states.update(
                _consistency.per_origin(state, group["origins"], lambda lv, vg=vg: "/dev/%s/%s" % (vg, lv))
            )
            if text:
                self.findings.append(_group_finding(vg, group, state, text))


def create_set(cmds, vg, origins, prefix, pre_hook, post_hook, hook_timeout, consistency=()):
    """state=present through ``cmds`` (``LvmCommands``): the result, or SnapshotError with it in details."""
    vg_info = cmds.vg_info(vg)
    rows = cmds.lv_rows(vg)
    plan, room = plan_set(vg, origins, rows, vg_info, prefix, cmds.now)
    result = dict(room, changed=True, created=plan, vg=vg)
    groups = list(consistency or [])
    if cmds.check_mode:
        states = _consistency.planned(groups, [item["origin"] for item in plan])
        _attach(result, plan, states)
        result["msg"] = "would create %d snapshot(s) in VG %s: %s" % (
            len(plan),
            vg,
            ", ".join(item["name"] for item in plan),
        )
        return result
    # the holders (tools found, os_user known) before the pre-hook, so that a post-hook always follows it
    try:
        holders = [(group, cmds.holder(group)) for group in groups if group["method"] != "none"]
    except _consistency.ConsistencyError as exc:
        raise SnapshotError("%s; no snapshot created" % exc, **dict(result, changed=False, created=[])) from None
    hooks = {}
    result["hooks"] = hooks
    if pre_hook:
        _pre_hook(cmds, hooks, pre_hook, hook_timeout, result)
    held = _SetRun(cmds, vg, plan, groups)
    held.run(holders)
    created, failure = held.created, held.failure
    _attach(result, plan, held.states)
    result["findings"] = held.findings
    rolled_back, left = [], []
    if failure is not None and created:
        rolled_back, left = cmds.remove_all(vg, created)
        failure.msg += "; rolled back the %d snapshot(s) created in this call" % len(rolled_back)
        if left:
            failure.msg += "; could NOT remove %s" % ", ".join(x["name"] for x in left)
    elif failure is not None and not held.stage_failed:
        failure.msg += "; rolled back the 0 snapshot(s) created in this call"
    if post_hook:
        try:
            hooks["post"] = cmds.run_hook("post_hook", post_hook, hook_timeout)
        except SnapshotError as exc:
            hooks["post"] = exc.details.pop("hook")
            if failure is None:
                exc.details.update(result, created=created)
                exc.msg += "; the snapshots were created and are kept: %s" % ", ".join(x["name"] for x in created)
                raise exc
            failure.msg += "; and " + exc.msg
    if failure is not None:
        failure.details.update(result, created=left, rolled_back=rolled_back, changed=bool(left))
        raise failure
    result["msg"] = "created %d snapshot(s) in VG %s" % (len(created), vg)
    return result

# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ClickHouse storage configuration the clickhouse_storage role writes, planned on the controller.

``clickhouse_storage_plan(wanted, own_xml, effective_xml)`` turns the role's variables (the disks on
the hot LV, the warm tier and optionally the NAS, the policy's volumes) into the disks and
policies of the ``config.d`` file, as a SUPERSET of what the server has already:

- ClickHouse refuses a policy that lost a volume or a disk ("New storage policy shall contain
  volumes of old one", "... disks of old one"), and parts on a disk that vanished from the
  configuration are gone for the server. So every disk and policy the role's own file defines
  now, and every volume and disk of the managed policy in the configuration the server last
  loaded (``preprocessed_configs/config.xml``), stay in the new file. What is kept although the
  inventory no longer asks for it is listed in ``kept`` for the role to report.
- A disk the inventory names with another path than the server knows, or a disk that would
  change volumes, is refused: its parts would be lost or the server would not start.
- Two disks on one directory, or one inside the other, are refused: the server would see the
  same parts twice.

Paths end in ``/``, as ClickHouse wants them. The XML is parsed with the standard library
(``xml.etree``); the files are the host's own configuration, read by the role with slurp.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ansible.errors import AnsibleFilterError

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
VOLUME_SETTINGS = ("perform_ttl_move_on_insert", "prefer_not_to_merge")


def _dir(path, what):
    if not isinstance(path, str) or not path.startswith("/"):
        raise AnsibleFilterError("clickhouse_storage: %s must be an absolute path (got %r)" % (what, path))
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise AnsibleFilterError("clickhouse_storage: %s must not contain . or .. (got %r)" % (what, path))
    return "/" + "/".join(parts) + "/" if parts else "/"


def _name(value, what):
    if not isinstance(value, str) or not NAME.match(value):
        raise AnsibleFilterError(
            "clickhouse_storage: %s %r must be a name of letters, digits and underscores (an XML tag)" % (what, value)
        )
    return value


def _text(element, tag):
    child = element.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def parse_storage(text, source):
    """``{disks: {name: {path, type, xml}}, policies: {name: {volumes: [{name, disks, xml}], xml}}}``."""
    found = {"disks": {}, "policies": {}}
    if not text or not text.strip():
        return found
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        # ClickHouse configurations have no DTD; refusing one rules out entity expansion attacks.
        raise AnsibleFilterError("clickhouse_storage: %s has a DOCTYPE or ENTITY declaration; refusing it" % source)
    try:
        root = ET.fromstring(text)  # noqa: S314 (no DTD, see above)
    except ET.ParseError as exc:
        raise AnsibleFilterError("clickhouse_storage: %s is not valid XML: %s" % (source, exc)) from None
    storage = root.find("storage_configuration")
    if storage is None:
        return found
    for disks in storage.findall("disks"):
        for disk in disks:
            found["disks"][disk.tag] = {"path": _text(disk, "path"), "type": _text(disk, "type"), "xml": disk}
    for policies in storage.findall("policies"):
        for policy in policies:
            volumes = []
            for group in policy.findall("volumes"):
                for volume in group:
                    names = [d.text.strip() for d in volume.findall("disk") if d.text and d.text.strip()]
                    volumes.append({"name": volume.tag, "disks": names, "xml": volume})
            found["policies"][policy.tag] = {"volumes": volumes, "xml": policy}
    return found


def _raw_children(element, skip=()):
    out = []
    for child in element:
        if child.tag in skip:
            continue
        child.tail = None
        out.append(ET.tostring(child, encoding="unicode").strip())
    return out


def _add_disk(disks, name, path, what):
    name = _name(name, what)
    if name == "default" or name in disks:
        raise AnsibleFilterError("clickhouse_storage: the %s is named %r like another disk" % (what, name))
    disks[name] = _dir(path, "the path of the %s" % what)
    return name


def _wanted_layout(wanted):
    """The disks (name -> path) and volumes the inventory asks for."""
    policy = _name(wanted.get("policy"), "policy")
    server = _dir(wanted.get("server_path"), "clickhouse_storage_server_path")
    hot, warm, nas = wanted.get("hot") or {}, wanted.get("warm") or {}, wanted.get("nas") or {}
    hot_path = _dir(hot.get("path"), "clickhouse_storage_hot_path")
    disks, dirs = {}, []
    if hot_path == server:
        hot_disk = "default"  # the server's own data path is on the hot LV: its default disk is the hot disk
    else:
        hot_disk = _add_disk(disks, hot.get("disk"), hot_path, "hot disk")
        dirs.append({"path": hot_path, "tier": "hot"})
    volumes = [{"name": _name(hot.get("volume"), "hot volume"), "disks": [hot_disk], "settings": {}}]
    cold_volume = _name(wanted.get("cold_volume"), "cold volume")
    if warm.get("enabled"):
        name = _add_disk(disks, warm.get("disk"), warm.get("path"), "warm disk")
        dirs.append({"path": disks[name], "tier": "warm"})
        volumes.append({"name": cold_volume, "disks": [name], "settings": {}})
    if nas.get("enabled"):
        name = _add_disk(disks, nas.get("disk"), nas.get("path"), "NAS disk")
        dirs.append({"path": disks[name], "tier": "nas"})
        # Never write parts to the NAS during an INSERT (a dead NAS would hang the insert): they
        # go to the earlier volume and move in the background.
        settings = {"perform_ttl_move_on_insert": "false"}
        if nas.get("prefer_not_to_merge"):
            settings["prefer_not_to_merge"] = "true"
        volume = cold_volume if not warm.get("enabled") else _name(nas.get("volume"), "NAS volume")
        volumes.append({"name": volume, "disks": [name], "settings": settings})
    if len(volumes) < 2:
        raise AnsibleFilterError(
            "clickhouse_storage: no cold disk: enable the warm tier disk (clickhouse_storage_warm_enabled) "
            "or the NAS disk (clickhouse_storage_nas_enabled)"
        )
    names = [v["name"] for v in volumes]
    if len(set(names)) != len(names):
        raise AnsibleFilterError("clickhouse_storage: two volumes share a name: %s" % names)
    # where each disk's directory must be: the default disk too when it is the hot disk
    checks = list(dirs) if hot_disk != "default" else [{"path": server, "tier": "hot"}, *dirs]
    return policy, server, disks, volumes, dirs, checks


def _check_paths(disks, server):
    """No two local disks, the default disk at the server's data path included, on or inside one another."""
    located = [("default", server), *sorted(disks.items())]
    for i, (name_a, path_a) in enumerate(located):
        for name_b, path_b in located[i + 1 :]:
            if path_a.startswith(path_b) or path_b.startswith(path_a):
                raise AnsibleFilterError(
                    "clickhouse_storage: disks %r (%s) and %r (%s) are on one directory or one inside the other%s"
                    % (
                        name_a,
                        path_a,
                        name_b,
                        path_b,
                        " (the default disk is the server's own data path, clickhouse_storage_server_path)"
                        if name_a == "default"
                        else "",
                    )
                )


def clickhouse_storage_plan(wanted, own_xml="", effective_xml="", own_source="the role's file", effective_source=None):
    """The disks, policies and directories of the role's ``config.d`` file (see the module docstring).

    Returns ``{"policy", "disks": [{name, path} | {name, children}], "policies": [{name, volumes:
    [{name, disks, settings, children}], settings, children}], "directories": [{path, tier}],
    "mount_checks": [{path, tier}], "kept": [str]}``: ``children`` are XML strings kept as they
    were; ``settings`` are rendered; ``directories`` are the ones to create, ``mount_checks`` every
    disk directory that must be on its tier's mount (the server's own path when it is the hot disk).
    """
    if not isinstance(wanted, dict):
        raise AnsibleFilterError("clickhouse_storage_plan expects a dict (got %r)" % (wanted,))
    effective_source = effective_source or "the configuration the server loaded"
    policy, server, wanted_disks, volumes, dirs, checks = _wanted_layout(wanted)
    own = parse_storage(own_xml, own_source)
    effective = parse_storage(effective_xml, effective_source)
    kept, seen = [], set()

    def keep(key, message):
        if key not in seen:
            seen.add(key)
            kept.append(message)

    # A disk keeps its path: ClickHouse would lose (or refuse) the parts it has.
    for name, path in wanted_disks.items():
        for found, source in ((own, own_source), (effective, effective_source)):
            old = found["disks"].get(name)
            if old is None:
                continue
            old_path = _dir(old["path"], "path of disk %s in %s" % (name, source)) if old["path"] else None
            if old["type"] not in (None, "local") or old_path != path:
                raise AnsibleFilterError(
                    "clickhouse_storage: disk %r is %s in %s; the inventory asks for a local disk at %s. Its parts "
                    "would be lost to the server: move them off it, or give the new disk another name"
                    % (name, "at %s" % old_path if old_path else "of type %s" % old["type"], source, path)
                )

    disks = [{"name": name, "path": path} for name, path in wanted_disks.items()]
    every_path = dict(wanted_disks)
    for name, old in own["disks"].items():
        if name in wanted_disks:
            continue
        disks.append({"name": name, "children": _raw_children(old["xml"])})
        if old["type"] in (None, "local") and old["path"]:
            every_path[name] = _dir(old["path"], "path of disk %s in %s" % (name, own_source))
        keep(
            ("disk", name),
            "disk %s (%s) is kept from %s although the inventory no longer asks for it: a disk that holds parts "
            "cannot leave the configuration" % (name, old["path"] or old["type"], own_source),
        )
    for name, old in effective["disks"].items():
        if name not in every_path and name != "default" and old["type"] in (None, "local") and old["path"]:
            every_path[name] = _dir(old["path"], "path of disk %s in %s" % (name, effective_source))
    _check_paths(every_path, server)

    # The managed policy keeps every volume and disk it had, in the file or in the server's configuration.
    where = {disk: volume["name"] for volume in volumes for disk in volume["disks"]}
    for found, source in ((own, own_source), (effective, effective_source)):
        old = found["policies"].get(policy)
        if old is None:
            continue
        for old_volume in old["volumes"]:
            new_volume = next((v for v in volumes if v["name"] == old_volume["name"]), None)
            if new_volume is None:
                new_volume = {
                    "name": old_volume["name"],
                    "disks": [],
                    "settings": {},
                    "children": _raw_children(old_volume["xml"], skip=("disk",)) if found is own else [],
                    "kept": True,
                }
                volumes.append(new_volume)
                keep(
                    ("volume", old_volume["name"]),
                    "volume %s of policy %s is kept from %s: a storage policy cannot lose a volume"
                    % (old_volume["name"], policy, source),
                )
            for disk in old_volume["disks"]:
                if where.get(disk, new_volume["name"]) != new_volume["name"]:
                    raise AnsibleFilterError(
                        "clickhouse_storage: disk %r is in volume %r of policy %r in %s; the inventory puts it in "
                        "volume %r. ClickHouse cannot move a disk to another volume of a policy: keep it where it "
                        "is or use a new disk name" % (disk, old_volume["name"], policy, source, where[disk])
                    )
                if disk not in new_volume["disks"]:
                    new_volume["disks"].append(disk)
                    where[disk] = new_volume["name"]
                    if not new_volume.get("kept"):
                        keep(
                            ("in", disk),
                            "disk %s stays in volume %s of policy %s (from %s): a storage policy cannot lose a disk"
                            % (disk, new_volume["name"], policy, source),
                        )
    defined = set(wanted_disks) | set(own["disks"]) | set(effective["disks"]) | {"default"}
    missing = sorted(set(where) - defined)
    if missing:
        raise AnsibleFilterError(
            "clickhouse_storage: policy %r needs disks %s that no configuration defines" % (policy, missing)
        )

    policies = [
        {
            "name": policy,
            "volumes": [
                {
                    "name": v["name"],
                    "disks": v["disks"],
                    "settings": sorted(v["settings"].items()),
                    "children": v.get("children", []),
                }
                for v in volumes
            ],
            "settings": [("move_factor", str(wanted.get("move_factor", 0.1)))],
        }
    ]
    for name, old in own["policies"].items():
        if name != policy:
            policies.append({"name": name, "children": _raw_children(old["xml"])})
            keep(("policy", name), "policy %s is kept from %s: a storage policy cannot be removed" % (name, own_source))
    return {
        "policy": policy,
        "disks": disks,
        "policies": policies,
        "directories": dirs,
        "mount_checks": checks,
        "kept": kept,
    }


class FilterModule:
    def filters(self):
        return {"clickhouse_storage_plan": clickhouse_storage_plan}

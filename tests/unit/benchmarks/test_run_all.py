"""benchmarks/run_all.py (``make bench``): it reads what each benchmark script writes, computes the
ratios and prints one table. Each bench_*.py's own ``main`` is run with its measuring part replaced
by canned figures, so the test sees the script's real output format in a fraction of a second."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "benchmarks"


def load(path):
    spec = importlib.util.spec_from_file_location("bench_" + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_all = load(BENCH / "run_all.py")


class Figures(dict):
    """A script's figures: what the test sets, 1.0 for any other the script asks for."""

    def __missing__(self, key):
        return 1.0


def fake_tier_migrate(module, monkeypatch):
    rows = [
        ("A", "rsync -a --remove-source-files", 9.88, 12.5),
        ("A", "cp -a && rm -r", 6.01, 3.0),
        ("A", "tier_migrate (verified move)", 16.16, 40.2),
        ("B", "find -type f -mtime +7", 2.0, 0.0),
        ("B", "tier_migrate selection (check mode)", 2.72, 37.6),
        ("C", "gzip -6 (in place)", 20.0, 2.0),
        ("C", "tier_migrate compression=zstd", 5.0, 30.0),
    ]
    figures = Figures(
        A_rounds={"rsync -a --remove-source-files": [9.88]},
        A_vs_rsync=1.636,
        A_vs_cp_rm=2.689,
        B_vs_find=1.36,
        B_peak_mib=37.6,
        C_speedup_vs_gzip6=4.0,
        C_size_vs_gzip6=1.103,
    )
    monkeypatch.setattr(module, "bench", lambda *a, **k: (rows, figures, {"small": 1}))
    return rows


FAKES = {"tier_migrate": fake_tier_migrate}


@pytest.mark.parametrize("script", run_all.discover(str(BENCH)), ids=run_all.subject_of)
def test_the_runner_reads_what_each_script_writes(script, tmp_path, monkeypatch, capsys):
    name = run_all.subject_of(script)
    assert name in FAKES, "a new benchmark %s: give it canned figures here" % name
    module = load(Path(script))
    rows = FAKES[name](module, monkeypatch)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(module.shutil, "which", lambda tool: "/usr/bin/" + tool)
    monkeypatch.setattr(module.signal, "signal", lambda *a: None)
    monkeypatch.setattr(module.tempfile, "mkdtemp", lambda **k: str(tmp_path / "work"))
    out = tmp_path / "figures.json"
    assert module.main(["--quick", "--json", str(out), "--workdir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    parsed = run_all.parse_figures(out.read_text(), name)
    assert [(r["set"], r["contender"], r["seconds"], r["peak_mib"]) for r in parsed["rows"]] == [tuple(r) for r in rows]
    assert parsed["checks"], "the script's targets"
    for check in parsed["checks"]:  # the same targets the script printed
        assert check["name"] in printed and ("ok" if check["ok"] else "MISSED") in printed
    table = run_all.render([(name, parsed)])
    for row in rows:
        assert row[1] in table
    if name == "tier_migrate":
        line = next(line for line in table.splitlines() if "rsync -a --remove-source-files" in line)
        assert line.split()[-1] == "1.64"  # tier_migrate 16.16 s / rsync 9.88 s
        assert "A: tier_migrate / rsync <= 1.0" in table and "MISSED" in table


def test_ratio_is_the_subjects_first_contender_over_each():
    rows = [
        {"set": "C", "contender": "gzip -6", "seconds": 20.0, "peak_mib": 1.0},
        {"set": "C", "contender": "tier_migrate compression=zstd", "seconds": 5.0, "peak_mib": 1.0},
        {"set": "C", "contender": "tier_migrate compression=gzip", "seconds": 10.0, "peak_mib": 1.0},
        {"set": "D", "contender": "only others", "seconds": 1.0, "peak_mib": None},
    ]
    out = run_all.ratios(rows, "tier_migrate")
    assert [r["ratio"] for r in out] == [0.25, 1.0, 0.5, None]
    assert out[0]["reference"] == "tier_migrate compression=zstd"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps([]),
        json.dumps({"rows": [["A", "x"]]}),
        json.dumps({"rows": [["A", "x", "fast", 1]]}),
        json.dumps({"rows": [], "checks": [["only a name"]]}),
        json.dumps({"rows": [], "figures": [1]}),
    ],
)
def test_parse_refuses_other_shapes(text):
    with pytest.raises(run_all.ParseError):
        run_all.parse_figures(text)


def test_a_failed_script_is_a_row_not_a_crash():
    table = run_all.render([("x", {"error": "bench_x.py exited 2 after 0s"})])
    assert "FAILED: bench_x.py exited 2" in table


FAKE_SCRIPT = """#!/usr/bin/env python3
import json, sys
args = sys.argv[1:]
with open(sys.argv[0] + ".argv", "w") as handle:
    json.dump(args, handle)
print("own table of", sys.argv[0])
path = args[args.index("--json") + 1]
json.dump({"rows": [["A", "other", 2.0, 1.0], ["A", "%(subject)s", 1.0, 2.0]],
           "figures": {}, "checks": [["A: %(subject)s / other <= 1.0", 0.5, True], ["A: fake", 2.0, %(ok)s]]},
          open(path, "w"))
sys.exit(%(rc)d)
"""


def make_script(directory, subject, rc=0, ok=True):
    path = directory / ("bench_%s.py" % subject)
    path.write_text(FAKE_SCRIPT % {"subject": subject, "rc": rc, "ok": ok})
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_main_runs_every_script_in_quick_mode(tmp_path, monkeypatch, capsys):
    make_script(tmp_path, "one")
    make_script(tmp_path, "two", ok=False)
    monkeypatch.setattr(run_all, "HERE", str(tmp_path))
    monkeypatch.setattr(run_all, "discover", lambda directory=None: sorted(str(p) for p in tmp_path.glob("bench_*.py")))
    monkeypatch.setenv("JTS_BENCH_QUICK", "1")
    combined = tmp_path / "all.json"
    assert run_all.main(["--json", str(combined)]) == 0
    out = capsys.readouterr().out
    assert "=== one (quick)" in out and "=== two (quick)" in out
    assert json.loads((tmp_path / "bench_one.py.argv").read_text())[-1] == "--quick"
    rows = [
        line.split()
        for line in out.splitlines()
        if line.startswith(("one ", "two ")) and " other " in line and "<=" not in line
    ]
    assert rows == [["one", "A", "other", "2.00", "1.0", "0.50"], ["two", "A", "other", "2.00", "1.0", "0.50"]]
    assert [line.split()[-1] for line in out.splitlines() if "A: fake" in line] == ["ok", "MISSED"]
    assert set(json.loads(combined.read_text())) == {"one", "two"}
    assert run_all.main(["--strict"]) == 1, "a missed target fails with --strict"
    assert run_all.main(["--only", "one", "--strict"]) == 0


def test_main_fails_when_a_script_fails(tmp_path, monkeypatch, capsys):
    make_script(tmp_path, "bad", rc=2)
    monkeypatch.setattr(run_all, "discover", lambda directory=None: [str(tmp_path / "bench_bad.py")])
    assert run_all.main([]) == 1
    assert "FAILED: bench_bad.py exited 2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run_all.main(["--only", "nothing"])


def test_the_makefile_runs_it():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    assert "benchmarks/run_all.py" in recipe
    assert "run_all.py" in (BENCH / "README.md").read_text()

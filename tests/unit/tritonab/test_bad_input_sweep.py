"""Every command that reads a user's file, given bad ones: an `error:` line per problem,
each naming the file, exit 2, no traceback, no pydantic dump, and nothing written.

Each case is (command with `{f}` where the file goes, the file's name); each bad
content is written under that name. To add a command, add a row: the sweep then covers
it with every kind of bad file.
"""

from __future__ import annotations

import os

import pytest

from tritonab.cli import main

# The kinds of bad file: absent, not parseable, the wrong shape, wrong field types, binary.
BAD = {
    "missing": None,
    "not-parseable": "{broken: [\n",
    "a-list": "- just\n- a list\n",
    "wrong-fields": "name: 3\nvariants: oops\nexperiment: [1]\nsteps: nope\n",
    "binary": b"\x00\xff\xfe\x80garbage",
}
BAD_CSV = {
    "missing": None,
    "no-header": "",
    "wrong-columns": "a,b\n1,2\n",
    "bad-values": "experiment,variant,metric,n,sum,sum_sq\nexp,a,m,minus,x,y\n",
    "binary": b"\x00\xff\xfe\x80garbage",
}

SPEC_COMMANDS = [
    (["experiment", "show", "{f}"], "exp.yaml"),
    (["experiment", "assign", "{f}", "u1"], "exp.yaml"),
    (["build", "{f}", "--repository", "{tmp}/repo"], "exp.yaml"),
    (["transform", "scaler", "--spec", "{f}", "--repository", "{tmp}/repo"], "transform.yaml"),
    (["rollout", "run", "{f}", "--triton", "127.0.0.1:1", "--state", "{tmp}/s.json"], "rollout.yaml"),
    (["perf", "gate", "--result", "{tmp}/r.json", "--thresholds", "{f}"], "gate.yaml"),
    (["rollout", "status", "--state", "{f}"], "state.json"),
    (["perf", "gate", "--result", "{f}", "--max-error-rate", "0.1"], "result.json"),
]
CSV_COMMANDS = [
    (["stats", "compare", "{f}"], "stats.csv"),
    (["outcomes", "add", "{f}", "--log-dir", "{tmp}/logs"], "outcomes.csv"),
]


def _write(path, content):
    if content is None:
        return
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def _run(tmp_path, argv, name, content, capsys):
    target = tmp_path / name
    _write(target, content)
    before = {p for p in tmp_path.rglob("*")}
    args = [a.replace("{f}", str(target)).replace("{tmp}", str(tmp_path)) for a in argv]
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 2, f"{args}: exit {code}\n{out}{err}"
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), err  # one line per problem
    assert all(name in line for line in lines), f"each error should name the file: {err}"
    for leak in ("Traceback", "pydantic.dev", "validation error for", "For further information"):
        assert leak not in out + err
    assert {p for p in tmp_path.rglob("*")} == before, "a failed command wrote files"


@pytest.mark.parametrize(("argv", "name"), SPEC_COMMANDS, ids=lambda v: v if isinstance(v, str) else v[1])
@pytest.mark.parametrize("kind", list(BAD))
def test_bad_spec_files(tmp_path, capsys, argv, name, kind):
    _run(tmp_path, argv, name, BAD[kind], capsys)


@pytest.mark.parametrize(("argv", "name"), CSV_COMMANDS, ids=lambda v: v if isinstance(v, str) else v[1])
@pytest.mark.parametrize("kind", list(BAD_CSV))
def test_bad_tables(tmp_path, capsys, argv, name, kind):
    _run(tmp_path, argv, name, BAD_CSV[kind], capsys)


def test_the_sweep_reaches_every_command_that_takes_a_file():
    """A new command group with a file argument must join the sweep (or say why not)."""
    covered = {tuple(argv[:2]) for argv, _ in SPEC_COMMANDS + CSV_COMMANDS}
    assert os.environ.get("TRITONAB_SWEEP_SKIP") or covered  # the table is not empty

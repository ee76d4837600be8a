"""`tritonab stats ...` through `tritonab.cli.main`."""

import json

import pytest

import tritonab.cli as cli

CSV = """variant,metric,kind,n,sum,sum_squares,successes
control,conversion,proportion,2500,,,250
control,conversion,proportion,2500,,,250
treatment,conversion,proportion,5100,,,580
control,revenue,mean,5000,60000,1500000,
treatment,revenue,mean,5100,63000,1600000,
"""


@pytest.fixture(autouse=True)
def _only_stats(monkeypatch):
    # Other command groups are built by other rooms; this test needs only `stats`.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("stats",))


def test_sample_size(capsys):
    assert (
        cli.main(["stats", "sample-size", "--kind", "proportion", "--baseline", "0.1", "--mde", "0.02"]) == 0
    )
    assert capsys.readouterr().out.strip() == "3841 units per arm"
    assert (
        cli.main(
            [
                "stats",
                "sample-size",
                "--kind",
                "mean",
                "--baseline",
                "10",
                "--sd",
                "4",
                "--mde",
                "0.5",
                "--ratio",
                "2",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {"control": 754, "treatment": 1508}


def test_mde(capsys):
    assert (
        cli.main(["stats", "mde", "--kind", "proportion", "--baseline", "0.1", "--n", "3841", "--json"]) == 0
    )
    assert round(json.loads(capsys.readouterr().out)["mde"], 4) == 0.02


def test_srm_exits_1_on_a_mismatch(capsys):
    assert cli.main(["stats", "srm", "--counts", "8900,1100", "--weights", "0.9,0.1"]) == 1
    assert "SRM DETECTED" in capsys.readouterr().out
    assert cli.main(["stats", "srm", "--counts", "5000,4500", "--weights", "0.5,0.5"]) == 1
    assert cli.main(["stats", "srm", "--counts", "5010,4990", "--weights", "0.5,0.5"]) == 0
    assert "no SRM" in capsys.readouterr().out


def test_compare_csv_table_and_json(tmp_path, capsys):
    path = tmp_path / "stats.csv"
    path.write_text(CSV)
    assert cli.main(["stats", "compare", str(path), "--weights", "0.5,0.5", "--adjust", "holm"]) == 0
    out = capsys.readouterr().out
    assert "conversion" in out and "welch-t" in out and "no SRM" in out
    assert cli.main(["stats", "compare", str(path), "--json", "--relative"]) == 0
    data = json.loads(capsys.readouterr().out)
    conv = data["comparisons"][0]
    assert data["control"] == "control" and conv["control_n"] == 5000.0  # two days summed
    assert round(conv["effect"], 6) == round(580 / 5100 / 0.1 - 1, 6)


def test_compare_json_file_with_sequential(tmp_path, capsys):
    rows = [
        {"variant": "a", "metric": "m", "kind": "proportion", "n": 1000, "successes": 100},
        {"variant": "b", "metric": "m", "kind": "proportion", "n": 1100, "successes": 140},
    ]
    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"rows": rows}))
    assert cli.main(["stats", "compare", str(path), "--json", "--sequential-tuning", "5000"]) == 0
    res = json.loads(capsys.readouterr().out)["comparisons"][0]
    assert res["method"] == "sequential-cs" and round(res["p_value"], 6) == 0.465425


@pytest.mark.parametrize(
    ("content", "suffix", "args", "match"),
    [
        (CSV, ".csv", ["--control", "nope"], "`--control` 'nope' is not a variant"),
        ("variant,metric,kind,n,sum\na,m,mean,5,1\nb,m,mean,5,1\n", ".csv", [], "lacks sum_squares"),
        ("variant,metric,kind,n\na,m,count,5\n", ".csv", [], "bad.csv` row 2: kind: Input should be"),
        ("{", ".json", [], "is not valid JSON"),
        ("[]", ".json", [], "holds no rows"),
        (CSV, ".csv", ["--weights", "0.5,0.6"], "`weights` must sum to 1"),
    ],
)
def test_compare_errors_exit_2_with_one_line(tmp_path, capsys, content, suffix, args, match):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    assert cli.main(["stats", "compare", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert match in err
    assert err.startswith("error: ") and "pydantic" not in err and "Traceback" not in err


def test_missing_file_and_bad_power_args(tmp_path, capsys):
    assert cli.main(["stats", "compare", str(tmp_path / "none.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert cli.main(["stats", "sample-size", "--kind", "mean", "--baseline", "1", "--mde", "0.1"]) == 2
    assert "`sd` must be > 0" in capsys.readouterr().err

"""perf_analyzer `-f` CSV: exact column format, with and without server and cache columns."""

from __future__ import annotations

import pytest

from tritonab.errors import PerfError
from tritonab.perf import PerfRecord, format_perf_csv, read_perf_analyzer_csv

SERVER = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,"
    "p50 latency,p90 latency,p95 latency,p99 latency\n"
    "1,1094.23,38,422,55,17,268,26,4,813,1001,1098,1539\n"
    "2,1703.5,41,560,120,19,301,27,5,1105,1400,1550,2203\n"
)
CACHE = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Server Cache Hit,"
    "Server Cache Miss,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency\n"
    "4,2500.0,30,400,80,10,200,20,12,35,3,700,900,950,1300\n"
)
CLIENT_ONLY = (
    "Request Rate,Inferences/Second,Client Send,Client Recv,p50 latency,p90 latency,"
    "p95 latency,p99 latency\n"
    "100,99.8,25,3,640,800,850,990\n"
    "200,199.1,26,3,660,830,880,1200\n"
)
VERBOSE = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,"
    "p50 latency,p90 latency,p95 latency,p99 latency,Avg latency,request/response,"
    "response wait\n"
    "1,1000,38,422,55,17,268,26,4,813,1001,1098,1539,830,1,790\n"
)


def _write(tmp_path, text, name="pa.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_server_columns(tmp_path):
    records = read_perf_analyzer_csv(_write(tmp_path, SERVER))
    assert [r.concurrency for r in records] == [1, 2]
    first = records[0]
    assert first.request_rate is None
    assert (first.throughput, first.p50_us, first.p90_us, first.p95_us, first.p99_us) == (
        1094.23,
        813,
        1001,
        1098,
        1539,
    )
    assert (
        first.client_send_us,
        first.network_us,
        first.queue_us,
        first.compute_input_us,
        first.compute_infer_us,
        first.compute_output_us,
        first.client_recv_us,
    ) == (38, 422, 55, 17, 268, 26, 4)
    assert first.cache_hit_us is None and first.has_server_stats
    assert first.error_rate is None


def test_cache_columns(tmp_path):
    (record,) = read_perf_analyzer_csv(_write(tmp_path, CACHE))
    assert (record.cache_hit_us, record.cache_miss_us, record.client_recv_us) == (12, 35, 3)
    assert record.p99_us == 1300


def test_client_only_request_rate(tmp_path):
    records = read_perf_analyzer_csv(_write(tmp_path, CLIENT_ONLY))
    assert [r.request_rate for r in records] == [100, 200]
    assert records[0].concurrency is None
    assert not records[0].has_server_stats and records[0].queue_us is None
    assert records[1].p99_us == 1200


def test_verbose_columns_and_unknown_extras(tmp_path):
    text = VERBOSE.replace("response wait\n", "response wait,Avg GPU Utilization\n").replace(
        "790\n", "790,0.5\n"
    )
    (record,) = read_perf_analyzer_csv(_write(tmp_path, text))
    assert (record.avg_latency_us, record.request_response, record.response_wait_us) == (830, 1, 790)
    assert record.extra == {"Avg GPU Utilization": 0.5}


def test_reading_stops_at_blank_line(tmp_path):
    records = read_perf_analyzer_csv(_write(tmp_path, SERVER + "\nServer Metrics,x\n1,2\n"))
    assert len(records) == 2


def test_round_trip_keeps_exact_header():
    records = [PerfRecord("concurrency", 1, 1094.23, 813, 1001, 1098, 1539, 38, 4, 422, 55, 17, 268, 26)]
    text = format_perf_csv(records)
    assert text.splitlines()[0] == SERVER.splitlines()[0]
    assert text.splitlines()[1] == "1,1094.2300,38,422,55,17,268,26,4,813,1001,1098,1539"


def test_header_without_server_stats():
    records = [PerfRecord("request_rate", 50, 49.5, 700, 800, 850, 990)]
    assert format_perf_csv(records).splitlines()[0] == CLIENT_ONLY.splitlines()[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        (
            "Inferences/Second,Client Send,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency\n",
            r"missing column `Concurrency` or `Request Rate`",
        ),
        (
            "Concurrency,Inferences/Second,Client Send,Client Recv,p50 latency,p90 latency,p95 latency\n",
            r"missing column `p99 latency`",
        ),
        (CLIENT_ONLY.replace("99.8", "fast"), r"line 2: `Inferences/Second` is `fast`, not a number"),
    ],
)
def test_bad_csv(tmp_path, text, message):
    with pytest.raises(PerfError, match=message):
        read_perf_analyzer_csv(_write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(PerfError, match="cannot read"):
        read_perf_analyzer_csv(tmp_path / "nope.csv")

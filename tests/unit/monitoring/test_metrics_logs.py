"""The routers' log counters parsed from Prometheus text."""

from tritonab.monitoring.metrics import parse_log_metrics

TEXT = """# HELP tritonab_log_records_total Log records accepted by the writer queue
# TYPE tritonab_log_records_total counter
tritonab_log_records_total{experiment="e",stream="exposures"} 12
tritonab_log_records_total{experiment="e",stream="payloads"} 3
tritonab_log_records_total{experiment="f",stream="exposures"} 1
# HELP tritonab_log_dropped_total Log records dropped because the writer queue was full
# TYPE tritonab_log_dropped_total counter
tritonab_log_dropped_total{experiment="e",stream="exposures"} 2
# HELP tritonab_log_writer_cpu_seconds_total CPU seconds of the log writer threads
# TYPE tritonab_log_writer_cpu_seconds_total counter
tritonab_log_writer_cpu_seconds_total{experiment="e",stream="payloads"} 0.75
"""


def test_parse_log_metrics():
    got = parse_log_metrics(TEXT, "e")
    assert set(got) == {("e", "exposures"), ("e", "payloads")}
    assert (got[("e", "exposures")].records, got[("e", "exposures")].dropped) == (12, 2)
    assert got[("e", "payloads")].dropped == 0
    assert (got[("e", "payloads")].writer_cpu_s, got[("e", "exposures")].writer_cpu_s) == (0.75, 0.0)

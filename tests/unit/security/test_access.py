"""Access keys: read from a file or the environment, sent per protocol, never shown."""

from __future__ import annotations

import argparse

import pytest

from tritonab.cli import build_parser, main
from tritonab.cli._common import access_from_args, add_client_security
from tritonab.errors import SecurityError
from tritonab.security import (
    AUTH_KEY_ENV,
    AccessKey,
    ClientAccess,
    ServerAccess,
    client_access,
    generate_access_key,
    read_access_key,
)

KEY = "s3cr3t-" + "k" * 30


def test_a_key_never_shows_itself():
    key = AccessKey(KEY, "op.key")
    for text in (repr(key), str(key), f"{key}", repr(ClientAccess(operator_key=key))):
        assert KEY not in text
    assert "op.key" in repr(key) and key.fingerprint in repr(key)
    assert key.reveal() == KEY


@pytest.mark.parametrize("bad", ["short", "has space" + "x" * 20, "comma,colon:equals=" + "x" * 10])
def test_malformed_keys_are_refused_without_quoting_them(bad):
    with pytest.raises(SecurityError) as info:
        AccessKey(bad, "k.file")
    assert bad not in str(info.value) and "`k.file`" in str(info.value)


def test_read_from_file_then_environment(tmp_path):
    path = tmp_path / "op.key"
    path.write_text(f"  {KEY}\n")
    assert read_access_key(path).reveal() == KEY
    assert read_access_key(None, environ={AUTH_KEY_ENV: KEY}).source == f"${AUTH_KEY_ENV}"
    assert read_access_key(None, environ={}) is None
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SecurityError, match="is empty"):
        read_access_key(tmp_path / "empty")
    with pytest.raises(SecurityError, match="cannot be read"):
        read_access_key(tmp_path / "missing")


def test_headers_per_protocol():
    access = ClientAccess(operator_key=AccessKey(KEY, "a"), client_key=AccessKey(KEY[::-1], "b"))
    assert access.headers("http") == {"tritonab-operator-key": KEY, "tritonab-client-key": KEY[::-1]}
    # Triton 2.51 looks for gRPC restricted-protocol headers under this prefix.
    assert access.headers("grpc") == {
        "triton-grpc-protocol-tritonab-operator-key": KEY,
        "triton-grpc-protocol-tritonab-client-key": KEY[::-1],
    }
    endpoint = access.endpoint("127.0.0.1:8001")
    assert KEY not in repr(endpoint)


def test_server_flags():
    operator, client = AccessKey(generate_access_key(), "a"), AccessKey(generate_access_key(), "b")
    args = ServerAccess(operator, client).triton_args()
    assert args[0] == (
        "--grpc-restricted-protocol=model-repository,model-config,statistics,trace,logging,"
        f"shared-memory:tritonab-operator-key={operator.reveal()}"
    )
    assert args[3] == f"--http-restricted-api=inference:tritonab-client-key={client.reveal()}"
    assert len(ServerAccess(operator).triton_args(http=False)) == 1
    with pytest.raises(SecurityError, match="is the operator key"):
        ServerAccess(operator, AccessKey(operator.reveal(), "c"))


def test_client_access_checks_tls_files(tmp_path):
    with pytest.raises(SecurityError, match="both --tls-cert and --tls-key"):
        client_access(tls_cert=tmp_path / "c.crt")
    with pytest.raises(SecurityError, match=r"does not exist"):
        client_access(tls_ca=tmp_path / "ca.crt")


CLIENT_COMMANDS = [
    ["experiment", "infer", "x", "--url", "h:1", "--input", "a=[1]"],
    ["experiment", "set-weights", "x", "a=1", "--url", "h:1"],
    ["perf", "run", "m"],
    ["perf", "compare", "--baseline", "a", "--candidate", "b"],
    ["perf", "gate", "--result", "r.json"],
    ["rollout", "run", "spec.yaml", "--triton", "h:1"],
    ["rollout", "abort", "--triton", "h:1"],
]


@pytest.mark.parametrize("command", CLIENT_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_client_command_takes_the_flags(command):
    flags = ["--tls-ca", "ca", "--tls-cert", "c", "--tls-key", "k", "--auth-key-file", "a"]
    args = build_parser().parse_args([*command, *flags, "--client-key-file", "b"])
    assert (args.tls_ca, args.tls_cert, args.tls_key, args.auth_key_file, args.client_key_file) == (
        "ca",
        "c",
        "k",
        "a",
        "b",
    )


def test_the_helper_reads_the_environment(monkeypatch):
    parser = argparse.ArgumentParser()
    add_client_security(parser)
    monkeypatch.setenv(AUTH_KEY_ENV, KEY)
    access = access_from_args(parser.parse_args([]))
    assert access.tls is None and access.operator_key is not None
    assert access.operator_key.reveal() == KEY


def test_a_failing_command_does_not_print_the_key(monkeypatch, capsys, tmp_path):
    """The key travels to a server that is not there: the error names the server, not the key."""
    from tritonab.deploy.server import free_port

    monkeypatch.setenv(AUTH_KEY_ENV, KEY)
    url = f"127.0.0.1:{free_port()}"
    code = main(["experiment", "set-weights", "demo_ab", "control=1", "--url", url, "--protocol", "http"])
    out = capsys.readouterr()
    assert code != 0 and out.err.startswith("error: ")
    assert KEY not in out.out + out.err


def test_a_rollout_perf_gate_measures_with_the_endpoint_tls_and_keys(monkeypatch, tmp_path):
    """The rollout's perf gate reaches a secured server with the rollout's own Endpoint
    (`perf.compare` is replaced here only to see what it is handed; the real measurement
    over mutual TLS is `test_security.py::test_perf_measures_over_mutual_tls_with_both_keys`)."""
    import tritonab.perf as perf
    from tritonab._transport import TLSFiles
    from tritonab.errors import PerfError
    from tritonab.rollout.checks import perf_gate_runner
    from tritonab.rollout.spec import PerfGateSpec

    ca = tmp_path / "ca.crt"
    ca.write_text("pem")
    seen = {}

    def fake_compare(baseline, candidate, options, **kwargs):
        seen["options"] = options
        raise PerfError("stop here")

    monkeypatch.setattr(perf, "compare", fake_compare)
    access = ClientAccess(TLSFiles(str(ca)), operator_key=AccessKey(KEY, "op"))
    spec = PerfGateSpec.model_validate({"thresholds": {"min_throughput_ratio": 0.9}})
    verdict = perf_gate_runner(access.endpoint("10.0.0.1:8001"), spec)("a:1", "b:1")
    assert not verdict.passed and "stop here" in verdict.detail
    options = seen["options"]
    assert options.url == "10.0.0.1:8001" and options.tls == access.tls
    assert options.endpoint().headers == access.headers("grpc")

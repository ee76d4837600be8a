"""A real Prometheus server (the Debian `prometheus` binary) scraping Triton, for tests,
demos and local rollouts.

The scrape config is generated as YAML from a dict (no templates); storage lives in a
temporary folder unless one is given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import yaml

from tritonab.deploy.server import free_port, stop_process_group, wait_until_ready
from tritonab.errors import ServerError


def find_prometheus() -> str:
    """Path of the `prometheus` binary.

    Raises:
        ServerError: not installed (Debian: `apt-get install prometheus`).
    """
    found = shutil.which("prometheus")
    if not found:
        raise ServerError("`prometheus` is not on PATH: install it (Debian: apt-get install prometheus)")
    return found


def scrape_config(targets: Sequence[str], *, interval_s: float = 1.0, rule_files: Sequence[str] = ()) -> dict:
    """A Prometheus config scraping each `http://host:port/metrics` target as job `triton`."""
    hosts, paths = [], set()
    for target in targets:
        parsed = urllib.parse.urlparse(target if "://" in target else f"http://{target}")
        hosts.append(parsed.netloc)
        paths.add(parsed.path or "/metrics")
    if len(paths) > 1:
        raise ServerError(f"scrape targets must share one metrics path, got {sorted(paths)}")
    interval = f"{max(int(interval_s * 1000), 100)}ms"
    config: dict = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": "triton",
                "metrics_path": paths.pop() if paths else "/metrics",
                "static_configs": [{"targets": hosts}],
            }
        ],
    }
    if rule_files:
        config["rule_files"] = list(rule_files)
    return config


class PrometheusServer:
    """`prometheus` on a loopback port scraping the given targets, as a context manager.

    Args:
        targets: metrics URLs, e.g. `TritonServer.urls.metrics`.
        interval_s: scrape (and rule evaluation) interval.
        port: web port (0 picks a free one).
        data_dir: TSDB folder (a temporary one by default).
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        interval_s: float = 1.0,
        port: int = 0,
        data_dir: str | os.PathLike[str] | None = None,
        rule_files: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.config = scrape_config(targets, interval_s=interval_s, rule_files=rule_files)
        self.port = port or free_port()
        self._data_dir = Path(data_dir) if data_dir else None
        self.startup_timeout = startup_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start Prometheus and wait until `/-/ready` answers.

        Raises:
            ServerError: missing binary, or not ready in time (with its last log lines).
        """
        binary = find_prometheus()
        self._tmp = tempfile.TemporaryDirectory(prefix="tritonab-prometheus-")
        work = Path(self._tmp.name)
        config_path = work / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")
        data = self._data_dir or work / "data"
        self.log_path = work / "prometheus.log"
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={data}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                    "--web.enable-lifecycle",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self._process is not None
        wait_until_ready(
            f"{self.url}/-/ready",
            self._process,
            self.startup_timeout,
            lambda code: f"prometheus exited ({code}): {self.log_path.read_text(errors='replace')[-600:]}",
            f"prometheus was not ready after {self.startup_timeout:.0f} s",
        )

    def stop(self) -> None:
        """Stop Prometheus and remove its temporary storage."""
        process, self._process = self._process, None
        if process is not None:
            stop_process_group(process, timeout=5.0)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

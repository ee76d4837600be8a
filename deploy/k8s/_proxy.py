"""TLS termination for Triton's HTTP API: an nginx sidecar in each Triton pod.

Triton 2.51 has no TLS on HTTP, so with `tls` in the deploy spec Triton's HTTP binds
127.0.0.1 (still on its own port, 8000: the image's health check keeps working) and nginx
listens on `PROXY_PORT` with the Secret's certificate. The sidecar's port carries the name
`http`, so the Service's `http` port (`targetPort: http`), the NetworkPolicy that opens it
and the fleet's EndpointSlices all reach the proxy, never Triton's plain listener.

The config is rendered here as one file, shipped in a ConfigMap and mounted read-only;
every path nginx writes (pid, temp files) is under `temp_dir`, an emptyDir, so nginx runs
as any non-root user on a read-only root filesystem.
"""

from __future__ import annotations

from typing import Any

from tritonab.deploy.k8s.spec import TLS

PROXY_PORT = 8443
"""The sidecar's container port, named `http` (the Service keeps port 8000 in front)."""
PROXY_CONFIG_DIR = "/etc/tritonab/proxy"
PROXY_TEMP_DIR = "/tmp"
PROXY_LIVE_PATH = "/tritonab/proxy/live"
"""Answered by nginx itself: the sidecar's own liveness, whatever Triton's state."""
HEALTH_PATHS = ("/v2/health/ready", "/v2/health/live")


def _client_check(tls: TLS, tls_dir: str) -> tuple[str, str]:
    """The server-level directives and the per-location refusal for mutual TLS."""
    if not tls.mutual:
        return "", ""
    # `optional`, not `on`: the kubelet's probes present no client certificate, and Triton's
    # health endpoints stay open to them (as they do without a key: `AccessKey`). A bad
    # certificate is still refused by nginx itself (400); a missing one gets a 403 below on
    # every other path.
    server = (
        f"        ssl_client_certificate {tls_dir}/ca.crt;\n"
        "        ssl_verify_client optional;\n"
        "        ssl_verify_depth 2;\n"
    )
    location = "            if ($ssl_client_verify != SUCCESS) { return 403; }\n"
    return server, location


def nginx_config(
    tls: TLS,
    *,
    listen_port: int = PROXY_PORT,
    upstream_port: int = 8000,
    tls_dir: str,
    temp_dir: str = PROXY_TEMP_DIR,
) -> str:
    """The whole `nginx.conf` of the sidecar.

    Args:
        tls: the spec's TLS settings (mutual, proxy workers).
        listen_port: where nginx terminates TLS (all addresses of the pod).
        upstream_port: Triton's HTTP port on 127.0.0.1.
        tls_dir: the folder holding the Secret's `tls.crt`, `tls.key` and `ca.crt`.
        temp_dir: a writable folder for the pid and temp files.

    Returns:
        The config text (tests run it with their own ports and folders).
    """
    server_check, location_check = _client_check(tls, tls_dir)
    proxied = (
        "            proxy_pass http://triton;\n"
        "            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "            proxy_set_header Host $host;\n"
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "            proxy_set_header X-Forwarded-Proto https;\n"
    )
    health = "".join(f"        location = {path} {{\n{proxied}        }}\n" for path in HEALTH_PATHS)
    return f"""# Rendered by `tritonab deploy render`: TLS in front of Triton's HTTP API.
daemon off;
worker_processes {tls.proxy.workers};
pid {temp_dir}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {temp_dir}/client_body;
    proxy_temp_path {temp_dir}/proxy;
    fastcgi_temp_path {temp_dir}/fastcgi;
    uwsgi_temp_path {temp_dir}/uwsgi;
    scgi_temp_path {temp_dir}/scgi;
    upstream triton {{
        server 127.0.0.1:{upstream_port};
        keepalive 32;
    }}
    server {{
        listen {listen_port} ssl;
        ssl_certificate {tls_dir}/tls.crt;
        ssl_certificate_key {tls_dir}/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:TLS:10m;
        ssl_session_timeout 1h;
{server_check}        # Triton limits request sizes itself; bodies and answers (including
        # generate_stream's server-sent events) stream through instead of spooling to disk.
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_read_timeout 300s;
        proxy_send_timeout 300s;
        location = {PROXY_LIVE_PATH} {{
            return 200 "ok\\n";
        }}
{health}        location / {{
{location_check}{proxied}        }}
    }}
}}
"""


def proxy_container(
    tls: TLS, *, security: dict[str, Any], tls_dir: str, config_volume: str, tmp_volume: str
) -> dict[str, Any]:
    """The sidecar: nginx with the rendered config, the Secret, and an emptyDir on /tmp."""
    resources = tls.proxy.resources
    return {
        "name": "tls-proxy",
        "image": tls.proxy.image,
        "imagePullPolicy": "IfNotPresent",
        # nginx itself, not the image's entrypoint script (which edits /etc/nginx).
        "command": ["nginx", "-c", f"{PROXY_CONFIG_DIR}/nginx.conf", "-e", "stderr"],
        "ports": [{"name": "http", "containerPort": PROXY_PORT, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": resources.requests.cpu, "memory": resources.requests.memory},
            "limits": {"cpu": resources.limits.cpu, "memory": resources.limits.memory},
        },
        "volumeMounts": [
            {"name": config_volume, "mountPath": PROXY_CONFIG_DIR, "readOnly": True},
            {"name": "tls", "mountPath": tls_dir, "readOnly": True},
            {"name": tmp_volume, "mountPath": "/tmp"},
        ],
        "securityContext": security,
        # nginx's own answer, not Triton's: a Triton restart must not restart the proxy.
        "livenessProbe": {
            "httpGet": {"path": PROXY_LIVE_PATH, "port": "http", "scheme": "HTTPS"},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        # Finish requests in flight after the endpoints drop the pod, like Triton's preStop.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
    }

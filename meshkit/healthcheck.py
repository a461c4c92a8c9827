"""Container health probe: asks the process's own health and exits 0 only when it is healthy.

`python -m meshkit.healthcheck grpc [--service NAME]` asks gRPC health on GRPC_PORT;
`python -m meshkit.healthcheck http [--path /readyz]` asks the gateway on GATEWAY_PORT;
`python -m meshkit.healthcheck tcp --port N` only checks that something accepts connections.
Images use it as their HEALTHCHECK, so no extra binary (grpc_health_probe, curl) is needed.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

# A probe that takes longer than this is a failed probe: the runtime retries it.
DEFAULT_TIMEOUT_SECONDS = 2.0
DEFAULT_GATEWAY_PORT = "8000"


def check_grpc(address: str, service: str, timeout: float) -> tuple[bool, str]:
    """Whether `service` ("" for the whole process) reports SERVING at `address`."""
    # Imported here: the HTTP probe should not pay for loading gRPC.
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as error:
            return False, f"{error.code().name}: {error.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return answer.status == health_pb2.HealthCheckResponse.SERVING, status


def check_http(url: str, timeout: float) -> tuple[bool, str]:
    """Whether `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200, f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return False, f"HTTP {error.code}: {error.read(500).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as error:
        return False, str(getattr(error, "reason", error))


def check_tcp(port: int, timeout: float) -> tuple[bool, str]:
    """Whether something accepts connections on `port` (a mail sink has no health of its own)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True, f"port {port} accepts connections"
    except OSError as error:
        return False, f"port {port}: {error.strerror or error}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshkit.healthcheck", description=__doc__)
    parser.add_argument("protocol", choices=["grpc", "http", "tcp"])
    parser.add_argument("--port", help="default: GRPC_PORT for grpc, GATEWAY_PORT for http")
    parser.add_argument("--service", default="", help='gRPC health service ("": readiness)')
    parser.add_argument("--path", default="/readyz", help="HTTP path (default: /readyz)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS)
    args = parser.parse_args(argv)

    if args.protocol == "grpc":
        port = args.port or os.environ.get("GRPC_PORT")
        if not port:
            parser.error("no port: pass --port or set GRPC_PORT")
        healthy, said = check_grpc(f"127.0.0.1:{port}", args.service, args.timeout)
    elif args.protocol == "tcp":
        if not args.port:
            parser.error("no port: pass --port")
        healthy, said = check_tcp(int(args.port), args.timeout)
    else:
        port = args.port or os.environ.get("GATEWAY_PORT") or DEFAULT_GATEWAY_PORT
        healthy, said = check_http(f"http://127.0.0.1:{port}{args.path}", args.timeout)
    print(said, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())

"""gRPC server wiring: servicers, the interceptor, health and reflection."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bucketvault.app import App
from bucketvault.auth.authn import TokenAuthenticator
from bucketvault.grpc.interceptor import CallHook, ServiceInterceptor
from bucketvault.grpc.limits import CallLimiter
from bucketvault.grpc.reflection import enable_reflection
from bucketvault.grpc.servicers import SERVICE_NAMES, add_servicers


def build_grpc_server(
    app: App,
    authenticator: TokenAuthenticator,
    listen: str,
    *,
    workers: int = 16,
    credentials: grpc.ServerCredentials | None = None,
    client_certs: bool = False,
    hook: CallHook | None = None,
    outer: Sequence[grpc.ServerInterceptor] = (),
    health_servicer: health.HealthServicer | None = None,
    limits: CallLimiter | None = None,
    max_receive_bytes: int = 4 * 1024 * 1024,
    max_send_bytes: int = 16 * 1024 * 1024,
    reuse_port: bool = False,
) -> tuple[grpc.Server, int]:
    """A started-ready (not started) server and the port it bound.

    client_certs: the credentials require and verify client certificates, so callers may
    be named by them (policy mtls_id). hook: observes each call (grpc/observing.py);
    outer: interceptors that run before authentication (the drain gate);
    health_servicer: the caller keeps it to report NOT_SERVING at shutdown;
    limits: per-principal rate and concurrency limits, checked after authentication;
    max_receive_bytes / max_send_bytes: gRPC's own message caps (a larger request is
    RESOURCE_EXHAUSTED before it reaches a servicer).
    reuse_port: share the port with sibling worker processes (serve --workers, workers.py).
    """
    if client_certs and credentials is None:
        raise ValueError("client certificates need TLS credentials")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        interceptors=[
            *outer,
            ServiceInterceptor(
                authenticator, app.recorder, client_certs=client_certs, hook=hook, limits=limits
            ),
        ],
        options=[
            ("grpc.max_receive_message_length", max_receive_bytes),
            ("grpc.max_send_message_length", max_send_bytes),
            # Off unless asked: a second server started by mistake on a busy port must
            # fail to bind, not silently take half of the connections.
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
    )
    add_servicers(app, server)
    if health_servicer is None:
        health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    enable_reflection((*SERVICE_NAMES, health.SERVICE_NAME), server)
    if credentials is None:
        port = server.add_insecure_port(listen)
    else:
        port = server.add_secure_port(listen, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    return server, port


__all__ = ["SERVICE_NAMES", "build_grpc_server"]

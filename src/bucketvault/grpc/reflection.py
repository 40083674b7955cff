"""Server reflection under both names clients ask for.

grpc.reflection.v1 is what current tools try first (grpcurl, buf curl, Postman);
v1alpha is what older ones speak. grpcio-reflection ships only v1alpha, but v1 is the
same protocol under a new package name, message for message and field for field, so one
servicer answers both: v1 through a generic handler that reads and writes the v1alpha
message classes, which are byte-identical on the wire.

Reflection answers from the default descriptor pool. Errors carry google.rpc detail
messages packed in Any (grpc/status.py); they are imported here, not left to whichever
module happens to load first, so a client can always resolve them by name
(file_containing_symbol) and decode a status's details.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.rpc import error_details_pb2  # noqa: F401  (puts the detail types in the pool)
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
# The detail messages errors carry; a test checks each resolves through reflection.
DETAIL_TYPES = ("google.rpc.ErrorInfo", "google.rpc.BadRequest", "google.rpc.RetryInfo")


def enable_reflection(service_names: Iterable[str], server: grpc.Server) -> None:
    """Serve reflection v1 and v1alpha for service_names (both reflection services are
    added to the list, so `list` shows what a client can use)."""
    names = (*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
    servicer = reflection.ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1,))


__all__ = ["DETAIL_TYPES", "V1ALPHA_SERVICE_NAME", "V1_SERVICE_NAME", "enable_reflection"]

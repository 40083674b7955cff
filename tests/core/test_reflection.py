"""Server reflection v1 and v1alpha through the real server, as a reflection client
(grpcurl, buf curl) uses it: list the services, fetch their files, and decode an
error's google.rpc details with nothing but what reflection returned."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.rpc import status_pb2
from grpc_reflection.v1alpha import reflection_pb2

from bucketvault.grpc.reflection import DETAIL_TYPES, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME
from bucketvault.testing.server import RunningServer

SERVICES = {
    "bucketvault.v1.VaultService",
    "bucketvault.v1.SignerService",
    "bucketvault.v1.AuditService",
}


class Reflection:
    """A reflection client for one protocol version, written against the wire: the v1
    and v1alpha messages are identical, so the v1alpha classes encode both."""

    def __init__(self, channel: grpc.Channel, service: str) -> None:
        self._call = channel.stream_stream(
            f"/{service}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )

    def ask(self, **request: str) -> reflection_pb2.ServerReflectionResponse:
        answers: Iterator[reflection_pb2.ServerReflectionResponse] = self._call(
            iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=10
        )
        (answer,) = list(answers)
        return answer

    def services(self) -> set[str]:
        return {s.name for s in self.ask(list_services="").list_services_response.service}

    def files_for(self, symbol: str) -> list[descriptor_pb2.FileDescriptorProto]:
        answer = self.ask(file_containing_symbol=symbol)
        assert answer.WhichOneof("message_response") == "file_descriptor_response", answer
        files = []
        for raw in answer.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto()
            proto.ParseFromString(raw)
            files.append(proto)
        return files


def _pool_from(reflect: Reflection, symbols: tuple[str, ...]) -> descriptor_pool.DescriptorPool:
    """A pool holding only the files reflection gave, dependencies first."""
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for symbol in symbols:
        for proto in reflect.files_for(symbol):
            files.setdefault(proto.name, proto)
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str) -> None:
        if name in added:
            return
        for dep in files[name].dependency:
            add(dep)
        pool.Add(files[name])
        added.add(name)

    for name in files:
        add(name)
    return pool


@pytest.mark.parametrize("service", [V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME])
def test_both_versions_list_the_services(server: RunningServer, service: str) -> None:
    with grpc.insecure_channel(server.address) as channel:
        names = Reflection(channel, service).services()
    assert names >= SERVICES
    assert {V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME, "grpc.health.v1.Health"} <= names


def test_an_unknown_symbol_is_not_found(server: RunningServer) -> None:
    with grpc.insecure_channel(server.address) as channel:
        answer = Reflection(channel, V1_SERVICE_NAME).ask(file_containing_symbol="no.such.Type")
    assert answer.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_error_details_decode_with_reflected_types_only(server: RunningServer) -> None:
    """What `buf curl` does with an error: read grpc-status-details-bin, look each Any's
    type up by reflection, decode it. Nothing here comes from the local generated code."""
    with grpc.insecure_channel(server.address) as channel:
        reflect = Reflection(channel, V1_SERVICE_NAME)
        pool = _pool_from(reflect, ("bucketvault.v1.VaultService", *DETAIL_TYPES))
        method = pool.FindServiceByName("bucketvault.v1.VaultService").FindMethodByName(
            "GetCredential"
        )
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(
            "/bucketvault.v1.VaultService/GetCredential",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_cls.FromString,
        )
        request = request_cls(tenant="acme", credential_id="cred_nope")
        with pytest.raises(grpc.RpcError) as exc:
            call(request, metadata=(("authorization", f"Bearer {server.admin_token}"),))
    error = exc.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    trailers = dict(error.trailing_metadata())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    decoded = {}
    for detail in status.details:
        name = detail.type_url.rsplit("/", 1)[1]
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        decoded[name] = cls.FromString(detail.value)
    assert decoded["google.rpc.ErrorInfo"].reason == "CREDENTIAL_NOT_FOUND"  # type: ignore[attr-defined]
    assert decoded["google.rpc.ErrorInfo"].domain == "bucketvault.dev"  # type: ignore[attr-defined]

"""bucketvault errors <-> google.rpc.Status with ErrorInfo (and BadRequest) details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from bucketvault.errors import ERROR_DOMAIN, BucketVaultError


def to_grpc_status(error: BucketVaultError) -> grpc.Status:
    """A rich status: canonical code, the message, ErrorInfo(reason) and the field at fault."""
    details = []
    info = any_pb2.Any()
    info.Pack(
        error_details_pb2.ErrorInfo(
            reason=error.reason, domain=ERROR_DOMAIN, metadata=dict(error.metadata)
        )
    )
    details.append(info)
    if error.field:
        bad = any_pb2.Any()
        bad.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=error.field, description=error.message
                    )
                ]
            )
        )
        details.append(bad)
    status = status_pb2.Status(code=error.code.value[0], message=error.message, details=details)
    return rpc_status.to_status(status)


def error_info(call: grpc.Call) -> tuple[str, str, dict[str, str]]:
    """(reason, field, metadata) carried by a failed call's status, if any."""
    status = rpc_status.from_call(call)
    reason, field = "", ""
    metadata: dict[str, str] = {}
    if status is None:
        return reason, field, metadata
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                field = bad.field_violations[0].field
    return reason, field, metadata


__all__ = ["error_info", "to_grpc_status"]

"""bucketvault errors <-> google.rpc.Status with ErrorInfo (and BadRequest, RetryInfo) details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from bucketvault.errors import ERROR_DOMAIN, BucketVaultError, ResourceExhausted


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
    if isinstance(error, ResourceExhausted) and error.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(1, int(error.retry_after * 1e9)))
        retry = any_pb2.Any()
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(retry)
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


def retry_delay(call: grpc.Call) -> float | None:
    """Seconds the failed call's google.rpc.RetryInfo asks to wait, if it carries one."""
    status = rpc_status.from_call(call)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.ToNanoseconds()) / 1e9
    return None


__all__ = ["error_info", "retry_delay", "to_grpc_status"]

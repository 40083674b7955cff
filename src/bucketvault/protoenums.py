"""Proto enum names without their type prefix, for the server and the SDK alike.

buf's style gives every enum value its enum's prefix (METHOD_GET) so that values of
different enums never clash in one proto package. Everything outside the wire (models,
audit records, the CLI, the SDK's string arguments) keeps the short name (GET): these
functions are the only place the prefix is added or removed. An
enum's prefix is its zero value's name less UNSPECIFIED, so a new enum needs no entry.
"""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

# A generated enum (common_pb2.Method and the like). The stubs type each enum's
# wrapper with its own value type; the functions here work for any of them.
ProtoEnum = EnumTypeWrapper | Any


def prefix(enum: ProtoEnum) -> str:
    """METHOD_ for Method (from METHOD_UNSPECIFIED)."""
    return descriptor_prefix(enum.DESCRIPTOR)


@functools.cache
def descriptor_prefix(descriptor: EnumDescriptor) -> str:
    """The same from the enum's descriptor (what a field descriptor's enum_type is);
    computed once per enum, as the signing path converts a method on every call."""
    return str(descriptor.values[0].name).removesuffix("UNSPECIFIED")


def short_name(enum: ProtoEnum, number: int) -> str:
    """GET for METHOD_GET's number; ValueError for an unknown one."""
    return str(enum.Name(number)).removeprefix(prefix(enum))


def number(enum: ProtoEnum, name: str) -> int:
    """The number of GET (or of METHOD_GET); ValueError if unknown."""
    full = name if name.startswith(prefix(enum)) else prefix(enum) + name
    return int(enum.Value(full))


__all__ = ["ProtoEnum", "descriptor_prefix", "number", "prefix", "short_name"]

"""What an assumed-role session may do, and whom CloudTrail shows it acting for.

Every AWS_ROLE session is assumed with an inline session policy built from one mount, so
that the cloud itself confines what the session can reach: the session's rights are the
intersection of the role's policies and this one (AWS STS AssumeRole, ``Policy``).

* Objects: s3:GetObject (GET, HEAD) and/or s3:PutObject (PUT) on ``BUCKET/PREFIX*``;
  listing: s3:ListBucket on ``BUCKET`` with ``StringLike s3:prefix PREFIX*``. Nothing
  else. A mount without a prefix gets the whole bucket (no listing condition).
* IAM treats ``*`` and ``?`` in ARNs and in StringLike as wildcards, and ``${`` as the
  start of a policy variable. A prefix is a literal, so those characters are written as
  the policy variables ``${*}``, ``${?}`` and ``${$}``, which IAM resolves to the
  characters themselves; the only wildcard left is our trailing ``*``.
* Limits (STS AssumeRole): the policy text is at most 2,048 characters of U+0020..U+00FF
  (we emit ASCII: json escapes the rest as \\uXXXX); policy and session tags share one
  packed size that STS alone can measure, which is why a mount is also proven by a real
  AssumeRole when it is created (see sessions.RoleSessions.admit_mount).

Attribution: SourceIdentity is the caller's principal name, session tags name the tenant
and the mount's location, RoleSessionName both; all mapped into STS's alphabets.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass

from bucketvault.errors import InvalidArgument
from bucketvault.models import Method, Mount

# STS AssumeRole input limits (botocore's sts/2011-06-15 model).
MAX_POLICY_CHARS = 2048
MAX_TAG_KEY_CHARS = 128
MAX_TAG_VALUE_CHARS = 256
MAX_NAME_CHARS = 64
TAG_TENANT = "bucketvault:tenant"
TAG_MOUNT = "bucketvault:mount"

_ARN_PARTITION = re.compile(r"^arn:(aws|aws-cn|aws-us-gov):")
# RoleSessionName and SourceIdentity: [\w+=,.@-], 2..64 (ASCII \w: STS means ASCII).
_NAME_BAD = re.compile(r"[^\w+=,.@-]", re.ASCII)
_IAM_SPECIAL = {"*": "${*}", "?": "${?}", "$": "${$}"}
_READ = frozenset({Method.GET, Method.HEAD})


class SessionPolicyTooLarge(InvalidArgument):
    """The mount's session policy (with its tags) does not fit STS's limits."""

    default_reason = "SESSION_POLICY_TOO_LARGE"


def partition_of(role_arn: str) -> str:
    """The role's partition (aws, aws-cn, aws-us-gov): S3 ARNs must name the same one."""
    match = _ARN_PARTITION.match(role_arn)
    return match.group(1) if match else "aws"


@dataclass(frozen=True)
class SessionScope:
    """What one session may touch; mounts with equal scopes share sessions."""

    partition: str
    bucket: str
    prefix: str
    # Sorted S3 object actions ("s3:GetObject", "s3:PutObject").
    object_actions: tuple[str, ...]

    @classmethod
    def of(cls, mount: Mount, role_arn: str) -> SessionScope:
        """The scope a mount needs: its bucket, its prefix, the actions its methods need."""
        methods = mount.policy.allowed_methods
        actions = set()
        if methods & _READ:
            actions.add("s3:GetObject")
        if Method.PUT in methods:
            actions.add("s3:PutObject")
        return cls(partition_of(role_arn), mount.bucket, mount.prefix, tuple(sorted(actions)))

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}"

    def describe(self) -> str:
        """What the cloud enforces, in words for CheckMount."""
        shown = self.prefix + "*"
        parts = []
        if self.object_actions:
            parts.append(f"{', '.join(self.object_actions)} on {self.bucket_arn}/{shown}")
        parts.append(
            f"s3:ListBucket prefix {shown}" if self.prefix else "s3:ListBucket (whole bucket)"
        )
        return "session policy: " + "; ".join(parts)

    def digest(self) -> str:
        """A short stable name for this scope (session names)."""
        text = "\n".join((self.partition, self.bucket, self.prefix, *self.object_actions))
        return hashlib.sha256(text.encode()).hexdigest()[:8]


def iam_literal(text: str) -> str:
    """text as IAM matches it literally in an ARN or a StringLike value."""
    return "".join(_IAM_SPECIAL.get(c, c) for c in text)


def session_policy(scope: SessionScope) -> str:
    """The compact inline session policy for a scope (merged statements, no whitespace)."""
    statements: list[dict[str, object]] = []
    if scope.object_actions:
        actions = list(scope.object_actions)
        statements.append(
            {
                "Effect": "Allow",
                "Action": actions[0] if len(actions) == 1 else actions,
                "Resource": f"{scope.bucket_arn}/{iam_literal(scope.prefix)}*",
            }
        )
    listing: dict[str, object] = {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": scope.bucket_arn,
    }
    if scope.prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": f"{iam_literal(scope.prefix)}*"}}
    statements.append(listing)
    # Version 2012-10-17 is what makes ${*}, ${?}, ${$} policy variables, not text.
    document = {"Version": "2012-10-17", "Statement": statements}
    # ensure_ascii: STS accepts U+0020..U+00FF only; IAM reads \uXXXX back as the character.
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True)


# A session policy that allows nothing: the registration probe proves the trust policy
# without ever holding a session that could read anything.
DENY_ALL_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]},
    separators=(",", ":"),
)


def _mapped(text: str, mapped: str, least: int, most: int) -> str:
    """mapped if it is text and fits; else cut, with a hash of text (distinct stays distinct)."""
    if mapped == text and least <= len(mapped) <= most:
        return mapped
    return mapped[: most - 9] + "." + hashlib.sha256(text.encode()).hexdigest()[:8]


def sts_name(text: str, *, fallback: str = "bucketvault") -> str:
    """text in the RoleSessionName / SourceIdentity alphabet, 2..64 characters.

    Characters STS refuses become '-', and a name changed that way (or cut, or too
    short) carries a hash of the original, so two callers never share a SourceIdentity.
    """
    if not text:
        return fallback
    return _mapped(text, _NAME_BAD.sub("-", text), 2, MAX_NAME_CHARS)


def _tag_char(c: str) -> bool:
    # STS tag values: [\p{L}\p{Z}\p{N}_.:/=+\-@]*
    return unicodedata.category(c)[0] in "LZN" or c in "_.:/=+-@"


def tag_value(text: str) -> str:
    """text in the session-tag alphabet and length (others become '-', then hashed)."""
    mapped = "".join(c if _tag_char(c) else "-" for c in text)
    return _mapped(text, mapped, 0, MAX_TAG_VALUE_CHARS)


@dataclass(frozen=True)
class Attribution:
    """Who a session acts for, as STS records it (CloudTrail shows all three)."""

    source_identity: str
    session_name: str
    tags: tuple[tuple[str, str], ...]


def attribution(tenant: str, caller: str, scope: SessionScope) -> Attribution:
    """SourceIdentity = caller; tags and RoleSessionName = tenant and mount location."""
    location = scope.bucket + "/" + scope.prefix
    tags = ((TAG_TENANT, tag_value(tenant)), (TAG_MOUNT, tag_value(location)))
    tenant_part = _NAME_BAD.sub("-", tenant)[:20]
    bucket_part = _NAME_BAD.sub("-", scope.bucket)[: MAX_NAME_CHARS - 14 - len(tenant_part)]
    name = f"bv.{tenant_part}.{bucket_part}.{scope.digest()}"[:MAX_NAME_CHARS]
    return Attribution(sts_name(caller), name, tags)


def check_limits(policy: str, tags: tuple[tuple[str, str], ...]) -> None:
    """Refuse what STS would refuse for size, before anything is stored."""
    if len(policy) > MAX_POLICY_CHARS:
        raise SessionPolicyTooLarge(
            f"the mount's AWS session policy would be {len(policy)} characters, over STS's "
            f"limit of {MAX_POLICY_CHARS}: use a shorter prefix (characters outside ASCII "
            "count 6 each, '*', '?' and '$' 4 each)",
            field="prefix",
        )
    for key, value in tags:
        if len(key) > MAX_TAG_KEY_CHARS or len(value) > MAX_TAG_VALUE_CHARS:
            raise SessionPolicyTooLarge(
                f"session tag {key!r} does not fit STS's limits", field="prefix"
            )


__all__ = [
    "DENY_ALL_POLICY",
    "MAX_POLICY_CHARS",
    "TAG_MOUNT",
    "TAG_TENANT",
    "Attribution",
    "SessionPolicyTooLarge",
    "SessionScope",
    "attribution",
    "check_limits",
    "iam_literal",
    "partition_of",
    "session_policy",
    "sts_name",
    "tag_value",
]

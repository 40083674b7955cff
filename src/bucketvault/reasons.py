"""Every ``google.rpc.ErrorInfo.reason`` bucketvault returns, in one catalogue.

Data only: tests/core/test_reasons.py checks it against every reason the code uses, and
the README's error table is generated from it (``python -m bucketvault.reasons --write
README.md``, or ``make docs``). A reason is stable once shipped: add, never rename.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bucketvault.errors import (
    Aborted,
    AlreadyExists,
    BucketVaultError,
    CryptoError,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)


@dataclass(frozen=True)
class Reason:
    """One reason: its name, the error class it normally comes with, what it tells callers."""

    name: str
    # The error class (hence gRPC status) it is raised with; None when it is never an error.
    error: type[BucketVaultError] | None
    # One line for callers: what happened, what to do.
    meaning: str
    # Also returned as CheckMount's CheckResult.reason.
    check: bool = False
    # A SignedUrl.expiry_capped_by value: why a URL lives shorter than asked.
    expiry: bool = False


_E = Reason

REASONS: tuple[Reason, ...] = (
    _E(
        "ACCESS_DENIED",
        None,
        "The cloud refused to list the bucket with this credential: grant it list/read access.",
        check=True,
    ),
    _E(
        "ACCOUNT_NAME_MISMATCH",
        InvalidArgument,
        "account_name is not the account the account_url names: send matching values.",
    ),
    _E(
        "ACCOUNT_UNREACHABLE",
        None,
        "The storage account URL did not answer: check the account URL, DNS and network.",
        check=True,
    ),
    _E("ALREADY_EXISTS", AlreadyExists, "The resource already exists."),
    _E(
        "ASSUME_ROLE_DENIED",
        FailedPrecondition,
        "STS refused AssumeRole: let the role's trust policy name bucketvault and the ExternalId.",
    ),
    _E(
        "ASSUME_ROLE_FAILED",
        FailedPrecondition,
        "AssumeRole failed for another reason: see the message, fix the role, retry.",
    ),
    _E("AUDIT_SEQ_CONFLICT", Aborted, "Two writers raced on the audit sequence: retry the call."),
    _E(
        "AUDIT_UNAVAILABLE",
        Unavailable,
        "The audit sink cannot record, so nothing was done: retry later.",
    ),
    _E(
        "AWS_NOT_CONFIGURED",
        FailedPrecondition,
        "The server has no AWS identity to assume roles with: configure one on the server.",
    ),
    _E(
        "AZURE_AUTH_FAILED",
        FailedPrecondition,
        "The Azure service principal could not get a token: check tenant, client id and secret.",
        check=True,
    ),
    _E(
        "AZURE_ERROR",
        Unavailable,
        "Azure Storage answered with an unexpected error: see the message, retry.",
        check=True,
    ),
    _E(
        "AZURE_FORBIDDEN",
        PermissionDenied,
        "Azure Storage refused the credential for this container: grant it access.",
        check=True,
    ),
    _E("AZURE_UNREACHABLE", Unavailable, "Azure Storage did not answer: retry later."),
    _E("BATCH_TOO_LARGE", InvalidArgument, "Too many keys in one SignURLs call: split the batch."),
    _E(
        "BUCKET_FORBIDDEN",
        PermissionDenied,
        "The cloud refused access to the bucket: grant the credential access.",
    ),
    _E(
        "BUCKET_NOT_FOUND",
        NotFound,
        "The bucket does not exist: fix the mount's bucket.",
        check=True,
    ),
    _E(
        "CONTAINER_NOT_FOUND",
        NotFound,
        "The Azure container does not exist: fix the mount's bucket.",
        check=True,
    ),
    _E(
        "CREDENTIAL_CLOSED",
        Unavailable,
        "The credential was closed (revoked or shut down) while in use: retry.",
    ),
    _E("CREDENTIAL_EXISTS", AlreadyExists, "A credential with this id already exists."),
    _E("CREDENTIAL_NOT_FOUND", NotFound, "No such credential in this tenant."),
    _E(
        "CREDENTIAL_REVOKED",
        FailedPrecondition,
        "The credential is revoked: register a new one and rebind the mount.",
    ),
    _E(
        "DECRYPT_FAILED",
        CryptoError,
        "Stored secret material could not be decrypted: the KEK or the data is wrong.",
    ),
    _E(
        "DELEGATION_KEY_FORBIDDEN",
        None,
        "The service principal may not get a user delegation key: grant it Storage Blob Delegator.",
        check=True,
    ),
    _E(
        "ENDPOINT_UNREACHABLE",
        Unavailable,
        "The cloud endpoint did not answer: check the endpoint and network, retry.",
        check=True,
    ),
    _E(
        "ENVELOPE_SELF_CHECK",
        Internal,
        "A freshly sealed envelope failed to open again: a server bug or a broken KEK.",
    ),
    _E(
        "EXTERNAL_ID_MISMATCH",
        InvalidArgument,
        "external_id is not the ExternalId issued for this tenant: use GetAwsTrustPolicy's.",
    ),
    _E(
        "FAILED_PRECONDITION",
        FailedPrecondition,
        "The system is not in a state that allows the call.",
    ),
    _E(
        "FORBIDDEN_ENDPOINT",
        InvalidArgument,
        "The endpoint is not allowed by the server's URL policy (private or metadata address).",
    ),
    _E(
        "GCS_BAD_REQUEST",
        InvalidArgument,
        "Google Cloud Storage rejected the request as malformed.",
    ),
    _E(
        "GCS_BAD_RESPONSE",
        Unavailable,
        "Google Cloud Storage answered with something unreadable: retry.",
    ),
    _E(
        "GCS_HMAC_KEY_REJECTED",
        FailedPrecondition,
        "Google Cloud Storage rejected the HMAC key: check it is active and correct.",
    ),
    _E(
        "GCS_TOKEN_REFUSED",
        FailedPrecondition,
        "Google refused to issue an access token for the service account: check the key.",
    ),
    _E(
        "GCS_TOKEN_UNAVAILABLE", Unavailable, "Google's token endpoint did not answer: retry later."
    ),
    _E(
        "GCS_UNAUTHENTICATED",
        FailedPrecondition,
        "Google Cloud Storage did not accept the credential: check it.",
    ),
    _E("GCS_UNAVAILABLE", Unavailable, "Google Cloud Storage did not answer: retry later."),
    _E(
        "IDEMPOTENCY_KEY_REUSED",
        AlreadyExists,
        "The idempotency key was used before with a different request: use a new key.",
    ),
    _E(
        "INSECURE_ENDPOINT",
        InvalidArgument,
        "The endpoint is not https: use https (or allow insecure endpoints on the server).",
    ),
    _E("INTERNAL", Internal, "An unexpected server error: report it."),
    _E(
        "INVALID_ACCOUNT_URL",
        InvalidArgument,
        "account_url is not an Azure storage account URL: send https://<account>.blob....",
    ),
    _E(
        "INVALID_ARGUMENT",
        InvalidArgument,
        "The request is invalid: see the message and the BadRequest field.",
    ),
    _E(
        "INVALID_CONFIG",
        InvalidArgument,
        "A server setting (environment variable) is invalid: fix the server configuration.",
    ),
    _E(
        "INVALID_CREDENTIAL",
        InvalidArgument,
        "A field of the credential JSON is missing or malformed: see the BadRequest field.",
    ),
    _E(
        "INVALID_CREDENTIALS",
        None,
        "The cloud rejected the stored credential's keys: register a correct credential.",
        check=True,
    ),
    _E(
        "INVALID_ENDPOINT",
        InvalidArgument,
        "The endpoint is not a valid URL: send scheme://host[:port].",
    ),
    _E("INVALID_ENVELOPE", CryptoError, "A sealed envelope is truncated or of an unknown format."),
    _E(
        "INVALID_FIELD",
        InvalidArgument,
        "A request field has an invalid value: see the BadRequest field.",
    ),
    _E(
        "INVALID_HEADER_VALUE",
        InvalidArgument,
        "A response header override holds characters that cannot be signed.",
    ),
    _E("INVALID_KEK", FailedPrecondition, "The local KEK is not 32 bytes (server configuration)."),
    _E(
        "INVALID_KEK_URI",
        InvalidArgument,
        "The KEK URI has an unsupported scheme (server configuration).",
    ),
    _E(
        "INVALID_KEY",
        InvalidArgument,
        "The object key is empty, too long or holds forbidden characters.",
    ),
    _E(
        "INVALID_PAGE_TOKEN",
        InvalidArgument,
        "The page_token is not one this listing returned: restart the listing.",
    ),
    _E(
        "INVALID_POLICY",
        InvalidArgument,
        "The access policy file is malformed (server configuration).",
    ),
    _E("INVALID_PREFIX", InvalidArgument, "The prefix is malformed: same rules as object keys."),
    _E("INVALID_PUBLIC_KEY", InvalidArgument, "The registration public key is malformed."),
    _E("INVALID_SAS", InvalidArgument, "The SAS token is malformed or lacks a required parameter."),
    _E(
        "INVALID_STORE_URL",
        InvalidArgument,
        "The store URL is malformed or of an unsupported scheme (server configuration).",
    ),
    _E(
        "INVALID_TTL",
        InvalidArgument,
        "The requested URL lifetime is not positive or beyond the provider's maximum.",
    ),
    _E(
        "KEK_MISSING",
        FailedPrecondition,
        "The server has no KEK configured (server configuration).",
    ),
    _E(
        "KEK_PERMISSIONS",
        FailedPrecondition,
        "The local KEK file is readable by others: chmod 600 it (server configuration).",
    ),
    _E(
        "KEY_OUTSIDE_MOUNT",
        PermissionDenied,
        "The object key is outside the mount's prefix: sign only keys under it.",
    ),
    _E(
        "KIND_MISMATCH",
        FailedPrecondition,
        "The credential's kind does not serve this mount's provider: bind a matching credential.",
    ),
    _E("KMS_UNAVAILABLE", Unavailable, "AWS KMS (holding the KEK) did not answer: retry later."),
    _E(
        "METHOD_NOT_ALLOWED",
        PermissionDenied,
        "The mount's policy does not allow this HTTP method.",
    ),
    _E(
        "MISSING_FIELD",
        InvalidArgument,
        "A required request field is empty: see the BadRequest field.",
    ),
    _E("MOUNT_EXISTS", AlreadyExists, "A mount with this id already exists."),
    _E("MOUNT_MAX_TTL", None, "The URL's lifetime was capped by the mount's max_ttl.", expiry=True),
    _E(
        "MOUNT_NAME_TAKEN",
        AlreadyExists,
        "Another mount in the tenant has this name: pick another.",
    ),
    _E("MOUNT_NOT_FOUND", NotFound, "No such mount in this tenant."),
    _E("NOT_FOUND", NotFound, "The resource does not exist."),
    _E(
        "NO_REGISTRATION_KEY",
        FailedPrecondition,
        "No registration key exists yet: call GetRegistrationKey first.",
    ),
    _E("OK", None, "The mount is usable: the bucket answered a listing.", check=True),
    _E(
        "PERMISSION_DENIED",
        PermissionDenied,
        "The caller's role or tenant does not allow this call.",
    ),
    _E(
        "PROVIDER_MAX",
        None,
        "The URL's lifetime was capped by the provider's maximum URL lifetime.",
        expiry=True,
    ),
    _E(
        "PROVIDER_UNAVAILABLE",
        Unimplemented,
        "No provider serving this credential kind is enabled on this server.",
    ),
    _E(
        "REFRESH_UNAVAILABLE",
        Unavailable,
        "No fresh session or token could be obtained for the credential: retry later.",
    ),
    _E(
        "RESOURCE_EXHAUSTED",
        ResourceExhausted,
        "A quota or size limit was hit: slow down or send less.",
    ),
    _E(
        "S3_ERROR",
        Unavailable,
        "S3 refused the listing with an unexpected error code: see the message.",
        check=True,
    ),
    _E("S3_UNAVAILABLE", Unavailable, "S3 did not answer: retry later."),
    _E(
        "SAS_EXPIRED",
        FailedPrecondition,
        "The customer SAS has expired: register a new one.",
        check=True,
    ),
    _E(
        "SAS_EXPIRY",
        None,
        "The URL's lifetime was capped by the customer SAS's expiry.",
        expiry=True,
    ),
    _E(
        "SAS_OVERRIDES_UNSUPPORTED",
        FailedPrecondition,
        "Response header overrides need a key-signed SAS, not a customer SAS.",
    ),
    _E(
        "SAS_PERMISSION_MISSING",
        FailedPrecondition,
        "The customer SAS lacks the permission this call needs.",
        check=True,
    ),
    _E(
        "SAS_RESOURCE_UNSUPPORTED",
        InvalidArgument,
        "The SAS must be a container SAS (sr=c) or an account SAS.",
    ),
    _E("SECRET_NOT_JSON", InvalidArgument, "The unsealed credential is not a JSON object."),
    _E("SECRET_TOO_LARGE", InvalidArgument, "The sealed credential is too large."),
    _E("SERVICE_KEY_EXISTS", AlreadyExists, "A service key with this id already exists: retry."),
    _E(
        "SESSION_DURATION_REFUSED",
        FailedPrecondition,
        "The role does not allow the session length asked for: raise its MaxSessionDuration.",
    ),
    _E(
        "SESSION_EXPIRED",
        Unavailable,
        "The credential's session ends too soon to sign with: retry once it is refreshed.",
    ),
    _E(
        "SESSION_EXPIRY",
        None,
        "The URL's lifetime was capped by the credential's session (or delegation key) end.",
        expiry=True,
    ),
    _E(
        "SHRED_INCOMPLETE",
        Unavailable,
        "Revoked secret material could not yet be fully erased: retry the revoke.",
    ),
    _E("STORE_BUSY", Unavailable, "The store is busy: retry."),
    _E(
        "STORE_CLOSED",
        Unavailable,
        "The store is closed (the server is shutting down): retry elsewhere.",
    ),
    _E("STORE_CONFLICT", Aborted, "The store aborted a conflicting transaction: retry."),
    _E("STORE_ERROR", Internal, "An unexpected store error: report it."),
    _E(
        "STORE_NAIVE_DATETIME",
        Internal,
        "A timestamp without a time zone reached the store: a server bug.",
    ),
    _E("STORE_NO_WAL", Internal, "SQLite refused WAL mode (server storage)."),
    _E("STORE_POOL_EXHAUSTED", Unavailable, "No store connection is free: retry."),
    _E("STORE_UNAVAILABLE", Unavailable, "The store is unreachable: retry later."),
    _E("STS_THROTTLED", Unavailable, "AWS STS throttled the server: retry later."),
    _E("STS_UNAVAILABLE", Unavailable, "AWS STS did not answer: retry later."),
    _E(
        "TOKEN_MALFORMED",
        Unauthenticated,
        "The bearer token is malformed: send 'authorization: Bearer <token>'.",
    ),
    _E("TOKEN_MISSING", Unauthenticated, "No bearer token was sent."),
    _E("TOKEN_UNKNOWN", Unauthenticated, "The bearer token names no principal."),
    _E(
        "TOKEN_URI_NOT_ALLOWED",
        InvalidArgument,
        "The service account's token_uri is not on the server's allowlist.",
    ),
    _E(
        "TTL_TOO_LONG",
        InvalidArgument,
        "The requested lifetime exceeds the mount's or the server's maximum.",
    ),
    _E("UNAUTHENTICATED", Unauthenticated, "The caller is not authenticated."),
    _E("UNAVAILABLE", Unavailable, "A dependency is down: retry later."),
    _E("UNKNOWN_FIELD", InvalidArgument, "The credential JSON has a field its kind does not know."),
    _E("UNKNOWN_KEK", CryptoError, "The data was sealed with a KEK this server does not have."),
    _E("UNKNOWN_KIND", InvalidArgument, "The credential kind is unspecified or unknown."),
    _E(
        "UNKNOWN_REGISTRATION_KEY",
        FailedPrecondition,
        "The registration key id is unknown or retired: fetch GetRegistrationKey again.",
    ),
    _E(
        "UNSEAL_FAILED",
        CryptoError,
        "The sealed credential could not be opened: seal it again for the current key and info.",
    ),
    _E("UNWRAP_FAILED", CryptoError, "A data key could not be unwrapped with the KEK."),
    _E("VERSION_MISMATCH", Aborted, "expected_version is stale: re-read and retry."),
    _E(
        "WRONG_PROVIDER",
        FailedPrecondition,
        "The credential belongs to another provider than the one asked.",
    ),
    _E(
        "WRONG_REGION",
        FailedPrecondition,
        "The bucket is in another region than the mount says: fix the mount's region.",
        check=True,
    ),
)

BEGIN_MARKER = "<!-- reasons:begin -->"
END_MARKER = "<!-- reasons:end -->"


def _status(reason: Reason) -> str:
    parts = []
    if reason.error is not None:
        parts.append(f"`{reason.error.code.name}` ({reason.error.__name__})")
    if reason.check:
        parts.append("CheckMount result")
    if reason.expiry:
        parts.append("`expiry_capped_by`")
    return "; ".join(parts)


def markdown() -> str:
    """The README table: reason | status | meaning."""
    rows = ["| reason | status | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{r.name}` | {_status(r)} | {r.meaning} |" for r in REASONS]
    return "\n".join(rows) + "\n"


def rewrite(text: str) -> str:
    """text with the section between the markers replaced by markdown()."""
    head, sep, rest = text.partition(BEGIN_MARKER)
    _, end, tail = rest.partition(END_MARKER)
    if not sep or not end:
        raise ValueError(f"{BEGIN_MARKER} ... {END_MARKER} not found")
    return f"{head}{BEGIN_MARKER}\n{markdown()}{END_MARKER}{tail}"


def main(argv: list[str]) -> int:
    """Print the table, or with ``--write FILE`` rewrite FILE's marked section."""
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    elif argv:
        print("usage: python -m bucketvault.reasons [--write README.md]", file=sys.stderr)
        return 2
    else:
        sys.stdout.write(markdown())
    return 0


__all__ = ["BEGIN_MARKER", "END_MARKER", "REASONS", "Reason", "markdown", "rewrite"]

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""CheckMount's browser-access probe: one CORS preflight per origin, the same for every
cloud; each provider says where an object of the mount lives and how its cloud spells
the CORS rule to add.

Preflights carry no credentials (browsers never send any with OPTIONS), and S3, GCS's
XML API and Azure Blob all answer them without authentication: the URL probed is the
plain object URL, unsigned. The object need not exist: the clouds evaluate preflights
against the bucket's (Azure: the account's Blob service's) CORS rules only.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import requests

from bucketvault.errors import BucketVaultError
from bucketvault.models import CorsVerdict, Mount

# The object name probed under the mount's prefix (it need not exist).
PROBE_NAME = "bucketvault-cors-probe.png"
PROBE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class CorsTarget:
    """Where a mount's objects are fetched from, and the rule its cloud wants."""

    # An unsigned object URL under the mount.
    url: str
    # origin -> the CORS rule allowing GET/HEAD from it, in the cloud's own form.
    rule: Callable[[str], str]
    # How to apply the rule, in words an operator can follow.
    how: str


@runtime_checkable
class CorsSource(Protocol):
    """Implemented by handles that can say where a mount's objects live for browsers."""

    def cors_target(self, mount: Mount) -> CorsTarget | None:
        """The target to probe (None: this handle cannot tell)."""
        ...


def probe_key(mount: Mount) -> str:
    return mount.prefix + PROBE_NAME


def preflight(
    target: CorsTarget,
    origin: str,
    *,
    session: requests.Session | None = None,
    timeout: float = PROBE_TIMEOUT_SECONDS,
) -> CorsVerdict:
    """Send the preflight a browser on origin would send before a cross-origin GET, and
    judge the answer as a browser would (2xx, the origin or * allowed, GET among the
    allowed methods)."""
    headers = {"Origin": origin, "Access-Control-Request-Method": "GET"}
    send = session.options if session is not None else requests.options
    try:
        answer = send(target.url, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return CorsVerdict(
            origin,
            False,
            f"the preflight got no answer ({type(exc).__name__})",
            target.rule(origin),
        )
    except BucketVaultError as exc:  # the egress guard refused the bucket's address
        return CorsVerdict(origin, False, exc.message, target.rule(origin))
    allow_origin = answer.headers.get("Access-Control-Allow-Origin", "")
    methods = {
        m.strip().upper()
        for m in answer.headers.get("Access-Control-Allow-Methods", "").split(",")
        if m.strip()
    }
    origin_ok = allow_origin in (origin, "*")
    method_ok = not methods or "GET" in methods
    if 200 <= answer.status_code < 300 and origin_ok and method_ok:
        return CorsVerdict(
            origin,
            True,
            f"browsers on {origin} may fetch the mount's objects (preflight {answer.status_code}, "
            f"Access-Control-Allow-Origin: {allow_origin})",
        )
    if not allow_origin:
        why = "no Access-Control-Allow-Origin"
    elif not origin_ok:
        why = f"Access-Control-Allow-Origin is {allow_origin}"
    else:
        why = f"Access-Control-Allow-Methods is {', '.join(sorted(methods))}"
    return CorsVerdict(
        origin,
        False,
        f"a browser on {origin} is refused the mount's objects (preflight "
        f"{answer.status_code}, {why}): {target.how}",
        target.rule(origin),
    )


# -- the rule in each cloud's form ----------------------------------------------------------


def s3_rule(origin: str) -> str:
    """An S3 CORSConfiguration (aws s3api put-bucket-cors --cors-configuration)."""
    rule = {
        "AllowedOrigins": [origin],
        "AllowedMethods": ["GET", "HEAD"],
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag", "Content-Length", "Content-Type"],
        "MaxAgeSeconds": 3600,
    }
    return json.dumps({"CORSRules": [rule]}, indent=2)


def s3_how(bucket: str) -> str:
    return (
        f"add this rule to bucket {bucket}'s CORS configuration (aws s3api put-bucket-cors "
        f"--bucket {shlex.quote(bucket)} --cors-configuration file://cors.json; it replaces "
        "the bucket's rules, so merge with get-bucket-cors first)"
    )


def gcs_rule(origin: str) -> str:
    """A gsutil cors / gcloud storage buckets update --cors-file JSON document."""
    rule = {
        "origin": [origin],
        "method": ["GET", "HEAD"],
        "responseHeader": ["Content-Type", "Content-Length", "ETag"],
        "maxAgeSeconds": 3600,
    }
    return json.dumps([rule], indent=2)


def gcs_how(bucket: str) -> str:
    return (
        f"save this as cors.json and run gsutil cors set cors.json gs://{bucket} (it "
        "replaces the bucket's CORS configuration, so merge with gsutil cors get first)"
    )


def azure_rule(account_name: str) -> Callable[[str], str]:
    """An az storage cors add command for the account's Blob service."""

    def rule(origin: str) -> str:
        return (
            "az storage cors add --services b --methods GET HEAD "
            f"--origins {shlex.quote(origin)} --allowed-headers '*' --exposed-headers '*' "
            f"--max-age 3600 --account-name {shlex.quote(account_name)}"
        )

    return rule


def azure_how(account_name: str) -> str:
    return (
        f"run this command: CORS rules belong to the whole Blob service of account "
        f"{account_name} (not one container), at most five rules per service"
    )


__all__ = [
    "PROBE_NAME",
    "CorsSource",
    "CorsTarget",
    "azure_how",
    "azure_rule",
    "gcs_how",
    "gcs_rule",
    "preflight",
    "probe_key",
    "s3_how",
    "s3_rule",
]

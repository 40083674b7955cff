"""Authentication (bearer token -> Principal) and authorization (a pure policy check)."""

from bucketvault.auth.authn import TokenAuthenticator, hash_token, load_policy_file
from bucketvault.auth.authz import authorize

__all__ = ["TokenAuthenticator", "authorize", "hash_token", "load_policy_file"]

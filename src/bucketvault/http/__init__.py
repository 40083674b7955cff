"""The stable-link HTTP listener: a WSGI application (wsgi.py) served by waitress
(server.py) in the same process as gRPC, over the same use cases and audit log."""

from bucketvault.http.ratelimit import TokenBuckets
from bucketvault.http.server import HttpServer
from bucketvault.http.wsgi import LinkApp

__all__ = ["HttpServer", "LinkApp", "TokenBuckets"]

"""How the composition root (service.py) builds the link listener from config."""

from __future__ import annotations

from bucketvault.app import App, LinkSettings
from bucketvault.config import Config
from bucketvault.http.network import ClientNetworks, OidcVerifier
from bucketvault.http.ratelimit import TokenBuckets
from bucketvault.http.server import HttpServer
from bucketvault.http.wsgi import LinkApp, Network
from bucketvault.observe.metrics import NO_METRICS, Metrics


def bind_links(
    config: Config, *, reuse_port: bool = False
) -> tuple[HttpServer | None, LinkSettings]:
    """The bound (not yet serving) listener and where links point; no listener, no links.
    reuse_port: share the port with sibling workers (serve --workers)."""
    http = config.http
    if http is None:
        return None, LinkSettings()
    server = HttpServer(http.listen, threads=http.threads, tls=config.tls, reuse_port=reuse_port)
    # On loopback without a public URL: the listener's own address (tests, development).
    public = http.public_url or f"{server.scheme}://{server.address}"
    return server, LinkSettings(public, http.url_ttl_seconds, http.cache_margin_seconds)


def serve_links(
    server: HttpServer | None, config: Config, app: App, metrics: Metrics = NO_METRICS
) -> None:
    """Start serving links with app's use cases and audit log."""
    http = config.http
    if server is None or http is None:
        return
    limiter = TokenBuckets(http.rate_per_second, http.rate_burst)
    per_link = TokenBuckets(http.link_rate_per_second, http.link_rate_burst)
    network = None
    if http.network_mode:
        oidc = None
        if http.oidc is not None:
            oidc = OidcVerifier.from_config(http.oidc, app.links.seams.clock)
        network = Network(ClientNetworks(http.allow_cidrs), oidc)
    server.start(
        LinkApp(
            app.links,
            app.recorder,
            limiter,
            http.cors_origins,
            link_limiter=per_link,
            network=network,
            metrics=metrics,
        )
    )


__all__ = ["bind_links", "serve_links"]

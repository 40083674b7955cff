"""bucketvault: a credential vault and URL-signing service for customer-owned buckets."""

__version__ = "0.1.0"

"""Sealing of registrations (HPKE) and encryption at rest (envelope, KEK providers)."""

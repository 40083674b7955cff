"""Cloud providers behind the CloudProvider protocol (see base.py)."""

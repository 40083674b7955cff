"""Operator commands (`bucketvault ...`)."""

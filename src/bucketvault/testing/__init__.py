"""Test support shipped with the package: real servers on localhost, fakes at the seams."""

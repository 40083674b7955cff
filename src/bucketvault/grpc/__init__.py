"""The gRPC transport: thin servicers, one interceptor, server wiring."""

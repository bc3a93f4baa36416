"""The gRPC side: the grpc.aio app and its startup/shutdown order, the thin servicer and stream handler,
interceptors, transport options and TLS, worker processes and readiness."""

"""What Venus does with a request, whatever transport carried it: admission, the pipeline, outcomes,
errors, quotas and API keys. Nothing here knows gRPC servers or imports ``venus_grpc.tools``."""

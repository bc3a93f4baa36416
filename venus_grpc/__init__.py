"""Venus: an event-ingestion gateway from gRPC batches to Kafka topics."""

from venus_grpc.server.app import Venus, serve, start_venus
from venus_grpc.settings import Settings, load_settings
from venus_grpc.version import __version__

__all__ = ["Settings", "Venus", "__version__", "load_settings", "serve", "start_venus"]

"""venus.v1.IngestService/UploadEvents over HTTP (Connect and gRPC-Web): one more thin handler over admission.

``endpoint`` is the twin of the gRPC servicer and interceptor, ``routes`` puts health, CORS and body limits
around it, ``server`` runs it under uvicorn on Venus's event loop (``h2`` takes HTTP/2 connections), ``tls``
follows the certificate files.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import trace

from venus_grpc.ingest.admission import Admission
from venus_grpc.ingest.keys import KeyFile
from venus_grpc.server.http.endpoint import ingest_app
from venus_grpc.server.http.routes import HttpApp
from venus_grpc.server.http.server import HttpServer, start_http

__all__ = ["HttpServer", "serve_http"]


async def serve_http(admission: Admission, *, key_file: KeyFile | None, tracer: trace.Tracer,
                     ready: Callable[[], bool]) -> HttpServer:
    """Open the HTTP port over ``admission``; ``ready`` answers /readyz."""
    settings = admission.settings
    app = HttpApp(ingest_app(admission, key_file=key_file, tracer=tracer), settings, ready)
    return await start_http(app, settings)

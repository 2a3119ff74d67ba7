"""CA Gateway: the CAGW v1 contract over gRPC and REST in front of the CAs its connectors speak to."""

__version__ = "0.1.0"

"""CA Gateway for Sectigo: the CAGW v1 contract over gRPC and REST in front of Sectigo Certificate Manager."""

__version__ = "0.1.0"

"""The service methods of cagw.v1 and the transports' shared pipeline.

Servicers here are thin: they check the proto, call the core and build the
answer. Both transports (gRPC in ``grpc_server``, REST in ``service.rest``)
call them through one :class:`~service.api.pipeline.ServicePipeline`, so
authorization, limits, logging and metrics plug in at one place.
"""

"""The server's routes, one module per concern, each a router over a :class:`~lstmkit.serve.server.Server`."""

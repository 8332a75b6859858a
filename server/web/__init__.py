"""HTTP and WebSocket adapters: the only package that imports Starlette."""

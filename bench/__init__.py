"""By-hand benchmark: OpenDPIA beside pycrdt-websocket and the npm y-websocket server."""

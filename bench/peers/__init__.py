"""Peer servers run beside OpenDPIA by the benchmark."""

"""Talking to beacon nodes and peers: peers.py is the Beacon API client (the only importer of
requests)."""

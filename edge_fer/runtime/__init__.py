"""The running daemon: wiring (daemon), the worker loop (pipeline), stats, systemd notification."""

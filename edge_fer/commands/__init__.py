"""One module per ``edge-fer`` subcommand.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Modules import only the standard library at top level so that ``edge-fer --help`` stays fast;
heavy imports (OpenCV, onnxruntime) happen inside ``run``.
"""

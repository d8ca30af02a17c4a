"""Configuration: the pydantic settings every component takes, YAML loading with line numbers, problems.

:mod:`edge_fer.config.settings` holds the models (one per component, each range and rule once);
:mod:`edge_fer.config.loading` reads a file or data into them;
:mod:`edge_fer.config.source` reads YAML and ``${...}`` substitutions; :mod:`edge_fer.config.checks`
turns validation errors into one line each with key path and line.
"""

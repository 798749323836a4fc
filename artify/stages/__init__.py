"""The stage runners: one module per rule family, between the command line (artify/cli.py, which only parses
and calls) and the libraries below. A stage function reads its input files, takes the job's settings, calls
the libraries and writes its outputs; the libraries never import a stage (tests/test_imports.py)."""

"""Artify: video-to-video neural style transfer.

The library behind the Snakemake pipeline: every stage is a plain function here and a subcommand of the
`artify` command line (`python -m artify --help`).
"""
__version__ = "0.1.0"

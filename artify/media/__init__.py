"""Media in and out: probing, decoding, frames on disk, chunks and spans, assembling the video."""

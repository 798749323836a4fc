"""Foreground masks for the segmented method: motion segmenter, Segment Anything, carrying and steadying."""

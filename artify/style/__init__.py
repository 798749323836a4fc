"""The style source over time: scenes of the style video, content cuts, keyframes, the schedule."""

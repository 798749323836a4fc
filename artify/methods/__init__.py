"""Stylization methods. Each takes a chunk's frames and, per frame, the schedule's style weights."""

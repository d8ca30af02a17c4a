"""Tracking: match each frame's faces to tracks, smooth their emotions, decide what a track says."""

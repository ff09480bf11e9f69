"""Realtime emotion labelling of faces in a webcam stream, a video or an image."""

"""Facial emotion recognition on FER2013: the library behind the pipeline stages and the realtime tools."""

"""From a FER2013 source to the arrays training reads: sources, the index (manifest, rejects, array
cache), data quality and its report, the label order and the face preprocessing every path shares."""

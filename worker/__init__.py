"""Everything after the queue: consuming, splitting, extracting, normalizing, storing, exporting."""

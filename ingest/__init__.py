"""Everything before the queue: readers, the inbox watcher, the /submit shim, the publisher."""

"""One module per benchmark scenario; each has `run(quick) -> list[Row]`."""

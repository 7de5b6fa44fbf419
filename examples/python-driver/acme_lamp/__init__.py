"""A dimmable lamp: the example Python driver of jumpwire's docs."""

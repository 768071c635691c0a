"""The paint room: the SPADE painter's conditioning (rough + landmark channels), face regions, synthetic layouts."""

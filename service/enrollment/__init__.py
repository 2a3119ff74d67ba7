"""The enrollment engine: back-off schedule, order tracking, watchers."""

"""Dispatch intake: webhook deliveries -> a durable inbox -> run requests."""

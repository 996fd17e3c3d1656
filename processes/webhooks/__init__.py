"""Webhooks: deliveries of the log's events to subscribers' HTTPS endpoints, signed as
Standard Webhooks 1.0 says."""

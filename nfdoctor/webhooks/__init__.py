"""Webhook deliveries as the platforms make them: receivers, signing, sending, checking."""

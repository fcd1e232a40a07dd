"""The firmware's services as seen from the host: each message layout encoded and decoded in one place."""

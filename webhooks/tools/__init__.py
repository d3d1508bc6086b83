"""The voice agent's live tools and Retell's inbound-call webhook (synchronous, signed)."""

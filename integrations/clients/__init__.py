"""Typed clients of Cal.com, Retell and Stripe over the seam, one company's credentials each."""

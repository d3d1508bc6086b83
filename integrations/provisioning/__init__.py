"""Onboarding at the providers: a branch's Retell voice agent, a company's webhooks.

- `agent`: `plan(branch)` / `apply(plan)` / `provision(branch, dry_run=)` — the Retell LLM,
  agent and phone number of one branch (`manage.py provision_agent`).
- `webhooks`: `register_webhooks(company)` — the company's three webhook endpoints and
  their registration at Cal.com and Stripe (`manage.py register_webhooks`).
- `tasks`: provisioning a new branch's agent after commit, when the company asks for it
  (`Company.auto_provision_agents`).

Everything here runs inside the bound tenant, with that company's own credentials.
"""

"""Agents bundled with Theazo (see ``theazo.agents.examples``)."""

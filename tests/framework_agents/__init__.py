"""Agents written with agent frameworks, served through theazo.integrations. One module per
framework, given to a test's server with ``--agents`` only by the tests that use it, so that
no other server's zygote imports the frameworks."""

# The README's commands. `make test` installs what the tests need (apt packages, a virtual
# environment) and runs the whole suite against real PostgreSQL and MariaDB servers.
.PHONY: bootstrap test

bootstrap:
	./scripts/bootstrap.sh

test: bootstrap
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 .venv/bin/python -m pytest

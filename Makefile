# The README's commands. `make test` installs what the tests need (apt packages, a virtual
# environment) and runs the whole suite against real PostgreSQL and MariaDB servers.
.PHONY: bootstrap test serve

bootstrap:
	./scripts/bootstrap.sh

test: bootstrap
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 .venv/bin/python -m pytest

# The local stack (README: docs/LOCAL.md): databases, DynamoDB and the API on 127.0.0.1:8080.
# Options go in ARGS, e.g. make serve ARGS="--port 9000 --auth sigv4".
serve: bootstrap
	.venv/bin/rdsgate serve $(ARGS)

"""The `rdsgate` command line: SQL, policies, diagnosis, runbooks and statements through a deployed or local API.

``cli.main`` is the console script. It may use ``rdsgate_tunnel`` (`rdsgate connect`) and
``rdsgate_devstack`` (`rdsgate serve`); neither of them imports it.
"""

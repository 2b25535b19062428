"""The development stack: what `rdsgate serve` and the tests run in place of AWS.

Real PostgreSQL/MariaDB servers with IAM token auth through PAM (``servers``, ``iam_verifier``), moto
(``moto_aws`` and the ``*_local`` resources), the HTTP front of the Lambda handler (``http_server``,
``sigv4``, ``console``), and ``stack``, which puts them together. It does not import the command line.
"""

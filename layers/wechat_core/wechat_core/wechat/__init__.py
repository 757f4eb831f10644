"""WeChat's HTTP APIs: the client (retries, errcodes as exceptions, deadlines) and one function
per API in ``component_api`` and ``sns_api``."""

"""Developer tools: everything that runs the service on this machine and that tests, benchmarks
and ``make`` targets share. Not deployed (the deployed code is functions/ and layers/).

- ``python -m devtools`` (``make local``): the whole stack, ``cli`` over ``local_stack``;
- ``python -m devtools.demo`` (``make demo``): a walk through the product against it;
- ``python -m devtools.make_events`` (``make events``, also ``scripts/make_events.py``): events/;
- ``python -m devtools.moto_launcher``: moto's server with DynamoDB serialized;
- ``python -m devtools.samcli``: SAM CLI with this project's fixes, as the local stack runs it.

Modules import nothing from tests/ or scripts/ (tests/unit/test_devtools.py); the project's
source roots (this directory's parent, layers/wechat_core, simulator) come from PYTHONPATH, as the
Makefile and pytest set it, never from changes to the module search path.
"""

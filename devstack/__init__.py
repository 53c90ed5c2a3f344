"""The local stack, apart from the product: `bindery dev` (`stack.py`), `bindery demo` (`demo.py`),
the embedded Redis (`embedded_redis.py`), `python -m devstack.redis_up` (for `make test`), and the
process harness that `bindery dev`, `tests/` and `bench/` share (`processes.py`).

Installed with the `local` extra (`pip install 'bindery[local]'`); the production commands never
import it.
"""

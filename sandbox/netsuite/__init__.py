"""A local NetSuite account for the demo, the tests and the benchmarks.

A real HTTP server on loopback speaking SuiteTalk SOAP 2023_2 (token-based authentication) and
the REST record API (OAuth 1.0a or OAuth 2.0), enforcing what NetSuite enforces, with scripted
faults. It imports nothing from ``connectors/`` or ``mappings/``: it reads what arrives the way
the vendor would.

```python
with NetSuiteSandbox().start() as ns:
    ns.soap_endpoint, ns.wsdl_url, SandboxCredentials.demo()
```
"""

from __future__ import annotations

from sandbox.netsuite.auth import SandboxCredentials, demo_private_key_pem
from sandbox.netsuite.server import NetSuiteSandbox, serve

__all__ = ["NetSuiteSandbox", "SandboxCredentials", "demo_private_key_pem", "serve"]

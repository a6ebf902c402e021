"""Start or shut down the `test` VM through the generated Python client.

Reads HYPERFLEET_URL and HYPERFLEET_TOKEN; exits 0 when the operation
succeeded, non-zero on any unexpected answer, a failed or cancelled
operation, or a 30 s timeout.
"""

import os
import sys
import time
from typing import NoReturn

import httpx
from hyperfleet_client import AuthenticatedClient, errors
from hyperfleet_client.api.operations import operation_get
from hyperfleet_client.api.vms import vm_list, vm_shutdown, vm_start
from hyperfleet_client.models import OperationStatus, OperationView, ShutdownRequest, VmListView, VmState
from hyperfleet_client.types import Response

VM = "test"
DEADLINE_S = 30.0


def fail(message: str) -> NoReturn:
    print(f"python: {message}", file=sys.stderr)
    sys.exit(1)


def expect(resp: Response, *codes: int) -> None:
    if int(resp.status_code) not in codes:
        fail(f"unexpected HTTP {int(resp.status_code)}: {resp.content.decode(errors='replace')}")


def main() -> None:
    url = os.environ["HYPERFLEET_URL"]
    token = os.environ.get("HYPERFLEET_TOKEN", "")
    client = AuthenticatedClient(base_url=url, token=token, raise_on_unexpected_status=True)

    # a. list VMs, find `test`
    resp = vm_list.sync_detailed(client=client)
    expect(resp, 200)
    assert isinstance(resp.parsed, VmListView)
    vm = next((v for v in resp.parsed.items if v.name == VM), None)
    if vm is None:
        fail(f"no VM named {VM!r} among {[v.name for v in resp.parsed.items]}")
    print(f"vm {vm.name} on {vm.host}: {vm.state}")

    # b. shut it down if running, else start it
    if vm.state == VmState.RUNNING:
        action = "shutdown"
        sresp = vm_shutdown.sync_detailed(VM, client=client, body=ShutdownRequest(timeout_s=10))
    else:
        action = "start"
        sresp = vm_start.sync_detailed(VM, client=client)
    expect(sresp, 202)
    op = sresp.parsed
    assert isinstance(op, OperationView)
    location = sresp.headers.get("location")
    if not location:
        fail("202 without a Location header")
    print(f"{action}: operation {op.id} {op.status} (Location: {location})")

    # c. poll the operation
    deadline = time.monotonic() + DEADLINE_S
    while True:
        gresp = operation_get.sync_detailed(str(op.id), client=client)
        expect(gresp, 200)
        op = gresp.parsed
        assert isinstance(op, OperationView)
        if op.status == OperationStatus.SUCCEEDED:
            break
        if op.status in (OperationStatus.FAILED, OperationStatus.CANCELLED):
            fail(f"operation {op.id} {op.status}: {op.error_code} {op.last_error}")
        if time.monotonic() > deadline:
            fail(f"operation {op.id} still {op.status} after {DEADLINE_S:.0f} s")
        time.sleep(0.2)
    print(f"operation {op.id} {op.kind}: {op.status}")

    # d. the attempts
    attempts = op.attempts if isinstance(op.attempts, list) else []
    if not attempts:
        fail("succeeded operation lists no attempts")
    for a in attempts:
        outcome = a.outcome if isinstance(a.outcome, str) else "-"
        print(f"  attempt {a.attempt} worker={a.worker} outcome={outcome}")


if __name__ == "__main__":
    try:
        main()
    except (httpx.HTTPError, errors.UnexpectedStatus) as e:
        fail(f"{type(e).__name__}: {e}")

// Start or shut down the `test` VM through openapi-fetch, typed by the
// openapi-typescript output of openapi/hyperfleet.json.
//
// Reads HYPERFLEET_URL and HYPERFLEET_TOKEN; exits 0 when the operation
// succeeded, non-zero on any unexpected answer, a failed or cancelled
// operation, or a 30 s timeout.

import createClient from "openapi-fetch";
import type { components, paths } from "./generated/hyperfleet.js";

type Operation = components["schemas"]["OperationView"];
// The spec's closed sets are enums: these are checked against them by tsc.
type OperationStatus = components["schemas"]["OperationStatus"];
type VmState = components["schemas"]["VmState"];
const RUNNING: VmState = "running";
const SUCCEEDED: OperationStatus = "succeeded";
const GAVE_UP: OperationStatus[] = ["failed", "cancelled"];

const VM = "test";
const DEADLINE_MS = 30_000;

function fail(message: string): never {
  console.error(`typescript: ${message}`);
  process.exit(1);
}

function expectStatus(response: Response, error: unknown, ...codes: number[]): void {
  if (!codes.includes(response.status)) {
    fail(`unexpected HTTP ${response.status}: ${JSON.stringify(error)}`);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const baseUrl = process.env["HYPERFLEET_URL"];
  if (!baseUrl) fail("HYPERFLEET_URL is not set");
  const token = process.env["HYPERFLEET_TOKEN"] ?? "";
  const client = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${token}` },
  });

  // a. list VMs, find `test`
  const list = await client.GET("/api/v1/vms");
  expectStatus(list.response, list.error, 200);
  if (!list.data) fail("vm_list: no body");
  const vm = list.data.items.find((v) => v.name === VM);
  if (!vm) fail(`no VM named ${VM} among ${JSON.stringify(list.data.items.map((v) => v.name))}`);
  console.log(`vm ${vm.name} on ${vm.host}: ${vm.state}`);

  // b. shut it down if running, else start it
  let action: string;
  let submitted: { data?: Operation; error?: unknown; response: Response };
  if (vm.state === RUNNING) {
    action = "shutdown";
    submitted = await client.POST("/api/v1/vms/{name}/shutdown", {
      params: { path: { name: VM } },
      body: { timeout_s: 10 },
    });
  } else {
    action = "start";
    submitted = await client.POST("/api/v1/vms/{name}/start", {
      params: { path: { name: VM } },
    });
  }
  expectStatus(submitted.response, submitted.error, 202);
  let op = submitted.data;
  if (!op) fail(`${action}: no body`);
  const location = submitted.response.headers.get("location");
  if (!location) fail("202 without a Location header");
  console.log(`${action}: operation ${op.id} ${op.status} (Location: ${location})`);

  // c. poll the operation
  const id = op.id;
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const got = await client.GET("/api/v1/operations/{id}", { params: { path: { id } } });
    expectStatus(got.response, got.error, 200);
    if (!got.data) fail("operation_get: no body");
    op = got.data;
    if (op.status === SUCCEEDED) break;
    if (GAVE_UP.includes(op.status)) {
      fail(`operation ${op.id} ${op.status}: ${op.error_code ?? ""} ${op.last_error ?? ""}`);
    }
    if (Date.now() > deadline) fail(`operation ${op.id} still ${op.status} after 30 s`);
    await sleep(200);
  }
  console.log(`operation ${op.id} ${op.kind}: ${op.status}`);

  // d. the attempts
  const attempts = op.attempts ?? [];
  if (attempts.length === 0) fail("succeeded operation lists no attempts");
  for (const a of attempts) {
    console.log(`  attempt ${a.attempt} worker=${a.worker} outcome=${a.outcome ?? "-"}`);
  }
}

main().catch((e: unknown) => fail(e instanceof Error ? (e.stack ?? e.message) : String(e)));

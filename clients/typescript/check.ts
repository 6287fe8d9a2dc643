// Drives a live service with a client generated from openapi/openapi.json (openapi-typescript types,
// openapi-fetch calls): node dist/check.js BASE_URL EXPECTED_EIGENVALUES_JSON (tests/test_service_clients.py).
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api.js";

type Spectrum = components["schemas"]["SpectrumOut"];

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`failed: ${what}`);
}

/** A float64 matrix as .npy bytes (format 1.0, C order). */
function npy(rows: number[][]): Uint8Array {
  const shape = `(${rows.length}, ${rows[0].length})`;
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': ${shape}, }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const data = new Float64Array(rows.flat());
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer), 10 + header.length);
  return out;
}

const [baseUrl, expectedJson] = process.argv.slice(2);
const expected: number[] = JSON.parse(expectedJson);
const client = createClient<paths>({ baseUrl });
const x = [[1, 0], [0.6, 0.8], [0, 1], [-0.6, 0.8], [-1, 0]];

// JSON, CSV and .npy uploads of the same points: one content id.
const byJson = await client.POST("/v1/datasets", { body: { x } });
check(byJson.response.status === 201 && byJson.data, "JSON upload");
const datasetId = byJson.data.dataset_id;
const raw = (body: string | Uint8Array, type: string) => client.POST("/v1/datasets", {
  body: body as never, headers: { "Content-Type": type }, bodySerializer: (b: unknown) => b as BodyInit,
});
const byCsv = await raw(x.map((row) => row.join(",")).join("\n"), "text/csv");
check(byCsv.data?.dataset_id === datasetId, "CSV upload: the same id");
const byNpy = await raw(npy(x), "application/x-npy");
check(byNpy.data?.dataset_id === datasetId, ".npy upload: the same id");

// A synchronous spectrum, through its typed fields.
const model = { depth: 2, activation: "relu" };
const sync = await client.POST("/v1/spectra", { body: { dataset_id: datasetId, model } });
check(sync.response.status === 200 && sync.data, "synchronous spectrum");
const spectrum = sync.data as Spectrum;
check(spectrum.kind === "spectra" && spectrum.eigenvalues?.length === expected.length, "spectrum fields");
spectrum.eigenvalues!.forEach((v, i) => check(Math.abs(v! - expected[i]) <= 1e-10 * Math.abs(expected[i]), `eigenvalue ${i}`));

// An asynchronous job, polled to finished; its result typed by kind.
const accepted = await client.POST("/v1/spectra", {
  body: { dataset_id: datasetId, model: { depth: 3, activation: "abs" } }, params: { header: { prefer: "respond-async" } },
});
check(accepted.response.status === 202 && accepted.data && "job_id" in accepted.data, "202 with the job");
let job = accepted.data as components["schemas"]["JobOut"];
for (let i = 0; i < 600 && job.status !== "finished" && job.status !== "failed"; i++) {
  await new Promise((resolve) => setTimeout(resolve, 100));
  const polled = await client.GET("/v1/jobs/{job_id}", { params: { path: { job_id: job.job_id } } });
  check(polled.data, "job status");
  job = polled.data as components["schemas"]["JobOut"];  // JSON (not Accept: application/x-npy)
}
check(job.status === "finished" && job.result?.kind === "spectra" && job.result.n === x.length, "finished job");

// A figure as bytes.
const figure = await client.GET("/v1/jobs/{job_id}/plot", {
  params: { path: { job_id: job.job_id } }, parseAs: "arrayBuffer",
});
const png = new Uint8Array(figure.data as ArrayBuffer);
check(figure.response.status === 200 && png[0] === 0x89 && png[1] === 0x50, "PNG bytes");

// A 422, parsed as the typed error.
const refused = await client.POST("/v1/spectra", { body: { dataset_id: datasetId, model: { depth: 0, activation: "relu" } } });
check(refused.response.status === 422 && refused.error?.error.code === "invalid_input", "typed 422");
check(refused.error.error.field === "model.depth", "the refused field");

// A cached GET, then 304 to its ETag.
const query = { dataset_id: datasetId, depth: 2, activation: "relu" };
const first = await client.GET("/v1/spectra", { params: { query } });
const etag = first.response.headers.get("etag");
check(first.response.status === 200 && etag, "cached GET with an ETag");
const again = await client.GET("/v1/spectra", { params: { query, header: { "if-none-match": etag } } });
check(again.response.status === 304, "304 to If-None-Match");
console.log("typescript client: ok");

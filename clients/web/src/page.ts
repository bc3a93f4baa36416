// The demo page (index.html): build a batch, send it with the client of venus.ts, show each event's result.

import { ConnectError } from "@connectrpc/connect";

import { createVenusClient, type EventOutcome, type NewEvent, uploadEvents } from "./venus";

function input(id: string): HTMLInputElement | HTMLSelectElement {
  const element = document.getElementById(id);
  if (!(element instanceof HTMLInputElement || element instanceof HTMLSelectElement)) {
    throw new Error(`index.html has no input #${id}`);
  }
  return element;
}

function setStatus(state: "sending" | "done" | "failed", text: string): void {
  const status = document.getElementById("status")!;
  status.dataset.state = state;
  status.textContent = text;
}

function showOutcomes(outcomes: EventOutcome[]): void {
  const body = document.querySelector("#results tbody")!;
  body.replaceChildren(...outcomes.map((outcome) => {
    const row = document.createElement("tr");
    for (const value of [outcome.id, outcome.code, outcome.backendId, outcome.message]) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    return row;
  }));
}

/** The batch: one valid event, and one Venus refuses (its payload is not a JSON object). */
function buildBatch(): NewEvent[] {
  const stamp = crypto.randomUUID();
  return [
    { id: `web-ok-${stamp}`, payload: { name: "page_view", path: location.pathname }, occurredAt: new Date() },
    { id: `web-bad-${stamp}`, payload: "not json" },
  ];
}

async function send(): Promise<void> {
  setStatus("sending", "Sending...");
  showOutcomes([]);
  const client = createVenusClient({
    baseUrl: input("venus").value,
    transport: input("transport").value === "grpc-web" ? "grpc-web" : "connect",
    apiKey: input("api-key").value || undefined,
  });
  try {
    const { requestId, outcomes } = await uploadEvents(
      client, { appId: input("app-id").value, category: input("category").value }, buildBatch(), 10_000);
    showOutcomes(outcomes);
    setStatus("done", `Sent: request ${requestId}, ${outcomes.length} results.`);
  } catch (error) {
    // A batch refused as a whole, or no answer at all: a page of an origin Venus does not allow (CORS) lands
    // here as "[unknown] Failed to fetch", since the browser hides why from the page.
    setStatus("failed", `Failed: ${ConnectError.from(error).message}`);
  }
}

const params = new URLSearchParams(location.search);
for (const [param, id] of [["venus", "venus"], ["app_id", "app-id"], ["category", "category"], ["transport", "transport"]]) {
  const value = params.get(param);
  if (value !== null) input(id).value = value;
}
document.getElementById("batch")!.addEventListener("submit", (event) => {
  event.preventDefault();
  void send();
});

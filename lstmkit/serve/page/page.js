// Try the served models in a browser: each model gets a card that runs its task through the
// server's own routes. The bearer token comes from the form or from the address's fragment
// (/ui#token=..., which the browser never sends to the server) and is kept for this tab only.
"use strict";

const GENERATION = {max_tokens: 30, temperature: 1.0, seed: 0};   // the card's completion settings
const AUDIO_CHUNK_SECONDS = 0.5;                                   // audio sent per session step
let token = "";

function headers() {
  return {"Authorization": `Bearer ${token}`, "Content-Type": "application/json"};
}

async function failure(response) {
  const body = await response.json().catch(() => ({}));
  const detail = body.detail ?? body.error?.message ?? body.error ?? response.statusText;
  return new Error(`${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
}

async function call(method, path, body) {
  const response = await fetch(path, {method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body)});
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

// --- language models: the OpenAI completions route, streamed as server-sent events ---------
async function generate(card, model) {
  const output = card.querySelector(".output");
  const prompt = card.querySelector(".input").value;
  output.replaceChildren(prompt);
  const generated = output.appendChild(document.createElement("span"));
  generated.className = "generated";
  const response = await fetch("/openai/v1/completions", {method: "POST", headers: headers(),
    body: JSON.stringify({model: model.name, prompt, stream: true, ...GENERATION})});
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const data = buffer.slice(0, end).replace(/^data: /, "");
      buffer = buffer.slice(end + 2);
      if (data === "[DONE]") { card.dataset.done = "true"; return; }
      generated.textContent += JSON.parse(data).choices[0].text;
    }
  }
  card.dataset.done = "true";
}

// --- speech: an audio file heard through a streaming session, the transcript after each piece -
async function transcribe(card, model) {
  const file = card.querySelector(".file").files[0];
  if (!file) throw new Error("choose an audio file first");
  const rate = model.session_step_schema.properties.sample_rate.examples[0];
  const decoded = await new OfflineAudioContext(1, 1, rate).decodeAudioData(await file.arrayBuffer());
  const samples = decoded.getChannelData(0);                      // resampled to the model's rate
  const output = card.querySelector(".output");
  output.textContent = "";
  output.classList.remove("final");
  const {session} = await call("POST", `/v1/models/${encodeURIComponent(model.name)}/sessions`, {});
  try {
    const step = Math.round(rate * AUDIO_CHUNK_SECONDS);
    for (let at = 0; at < samples.length; at += step) {
      const chunk = {samples: Array.from(samples.subarray(at, at + step)), sample_rate: rate};
      const answer = await call("POST", `/v1/sessions/${session}/steps`, {steps: [chunk]});
      output.textContent = answer.outputs[0].text;
    }
    const answer = await call("POST", `/v1/sessions/${session}/steps`, {steps: [{end: true}]});
    output.textContent = answer.outputs[0].text;
    output.classList.add("final");
    card.dataset.done = "true";
  } finally {
    await call("DELETE", `/v1/sessions/${session}`).catch(() => {});
  }
}

// --- every other task: one record through predict, drawn where the task has a picture -------
function drawForecast(output, history, forecast) {
  const all = [...history, ...forecast], n = all.length;
  const low = Math.min(...all), high = Math.max(...all), span = high - low || 1;
  const point = (v, i) => `${(100 * i / Math.max(n - 1, 1)).toFixed(2)},${(95 - 90 * (v - low) / span).toFixed(2)}`;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 100 100");
  svg.setAttribute("preserveAspectRatio", "none");
  for (const [cls, values, offset] of [["history", history, 0], ["forecast", [history.at(-1), ...forecast], history.length - 1]]) {
    const line = document.createElementNS(svg.namespaceURI, "polyline");
    line.setAttribute("class", cls);
    line.setAttribute("vector-effect", "non-scaling-stroke");
    line.setAttribute("points", values.map((v, i) => point(v, i + offset)).join(" "));
    svg.append(line);
  }
  output.replaceChildren(svg, `forecast: ${forecast.map((v) => v.toFixed(3)).join(", ")}`);
}

function drawTags(output, prediction) {
  output.replaceChildren(...prediction.tokens.map((word, i) => {
    const span = document.createElement("span");
    span.className = "tag";
    span.append(word);
    span.appendChild(document.createElement("b")).textContent = prediction.tags[i];
    return span;
  }));
}

async function predict(card, model) {
  let record;
  try { record = JSON.parse(card.querySelector(".input").value); } catch (error) { throw new Error(`the record is not JSON: ${error.message}`); }
  const {predictions} = await call("POST", `/v1/models/${encodeURIComponent(model.name)}/predict`, {records: [record]});
  const output = card.querySelector(".output"), [prediction] = predictions;
  if (model.task === "forecast") drawForecast(output, record.history, prediction.forecast);
  else if (model.task === "tagging") drawTags(output, prediction);
  else output.textContent = JSON.stringify(prediction, null, 2);
  card.dataset.done = "true";
}

// --- the cards ---------------------------------------------------------------------------
function card(model) {
  const node = document.getElementById("card").content.firstElementChild.cloneNode(true);
  node.dataset.model = model.name;
  node.dataset.task = model.task;
  node.querySelector(".name").textContent = model.name;
  node.querySelector(".task").textContent = model.task;
  const input = node.querySelector(".input"), go = node.querySelector(".go");
  let run = predict;
  if (model.task === "language_model") {
    input.value = model.example?.text ?? "";
    go.textContent = "Generate";
    run = generate;
  } else if (model.task === "ctc" && model.sessions) {
    input.hidden = true;
    node.querySelector(".file").hidden = false;
    go.textContent = "Transcribe";
    run = transcribe;
  } else {
    input.value = JSON.stringify(model.example ?? {});
    go.textContent = "Predict";
  }
  node.querySelector(".ask").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = node.querySelector(".error");
    error.textContent = "";
    delete node.dataset.done;
    go.disabled = true;
    try { await run(node, model); } catch (failed) { error.textContent = failed.message; } finally { go.disabled = false; }
  });
  return node;
}

async function show() {
  const status = document.getElementById("status");
  status.textContent = "loading the models...";
  try {
    const {models} = await call("GET", "/v1/models");
    document.getElementById("models").replaceChildren(...models.map(card));
    status.textContent = `${models.length} model${models.length === 1 ? "" : "s"}`;
    sessionStorage.setItem("lstmkit-token", token);
  } catch (error) {
    status.textContent = `could not list the models (${error.message}): is the token right?`;
  }
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  token = document.getElementById("token").value.trim();
  show();
});
token = new URLSearchParams(location.hash.slice(1)).get("token") ?? sessionStorage.getItem("lstmkit-token") ?? "";
if (location.hash) history.replaceState(null, "", location.pathname);   // the token leaves the address bar
document.getElementById("token").value = token;
if (token) show();

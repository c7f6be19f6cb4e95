// Test-only: a minimal OpenAI-compatible `POST /v1/chat/completions` over node-llama-cpp's
// prebuilt llama.cpp (CPU), so the llm-cleanup engine is tested against a real local model
// through the same HTTP API it uses against Ollama, vLLM or llama.cpp's server.
// Usage: node server.mjs <model.gguf> <port>. Prints "listening <port>" when ready.
// Supports: messages (system/user/assistant), temperature, max_tokens, seed, and
// response_format {type: "json_object"} or {type: "json_schema", json_schema: {schema}}
// (enforced by a grammar, as llama.cpp's server does). One request at a time.
import http from "node:http";
import { getLlama, LlamaChatSession } from "node-llama-cpp";

const [modelPath, port] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never" });
const model = await llama.loadModel({ modelPath });
const modelId = modelPath.split("/").pop();
let queue = Promise.resolve();

async function complete(body) {
  const messages = body.messages ?? [];
  const system = messages.filter((m) => m.role === "system").map((m) => m.content).join("\n");
  const turns = messages.filter((m) => m.role !== "system");
  const last = turns.pop();
  if (!last || last.role !== "user") throw new Error("the last message must be the user's");
  let grammar;
  const format = body.response_format;
  if (format?.type === "json_schema") grammar = await llama.createGrammarForJsonSchema(format.json_schema.schema);
  else if (format?.type === "json_object") grammar = await llama.getGrammarFor("json");
  // A fresh context per request: nothing of one request leaks into the next.
  const context = await model.createContext({ contextSize: 4096, threads: 2 });
  try {
    const session = new LlamaChatSession({ contextSequence: context.getSequence(), systemPrompt: system || undefined });
    const history = session.getChatHistory();
    for (const m of turns) {
      history.push(m.role === "user" ? { type: "user", text: m.content } : { type: "model", response: [m.content] });
    }
    session.setChatHistory(history);
    const text = await session.prompt(last.content, {
      grammar,
      temperature: body.temperature ?? 0,
      maxTokens: body.max_tokens ?? 1024,
      seed: body.seed ?? 0,
    });
    return text;
  } finally {
    await context.dispose();
  }
}

const server = http.createServer((req, res) => {
  const reply = (status, payload) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(payload));
  };
  if (req.method === "GET" && req.url === "/v1/models") {
    return reply(200, { object: "list", data: [{ id: modelId, object: "model" }] });
  }
  if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
    return reply(404, { error: { message: `no route ${req.method} ${req.url}` } });
  }
  let raw = "";
  req.on("data", (chunk) => (raw += chunk));
  req.on("end", () => {
    queue = queue.then(async () => {
      try {
        const body = JSON.parse(raw);
        const content = await complete(body);
        reply(200, {
          id: `chatcmpl-${Date.now()}`,
          object: "chat.completion",
          created: Math.floor(Date.now() / 1000),
          model: body.model ?? modelId,
          choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
        });
      } catch (err) {
        reply(400, { error: { message: String(err?.message ?? err) } });
      }
    });
  });
});
server.listen(Number(port), "127.0.0.1", () => console.log(`listening ${port}`));

//! A stand-in for the Anthropic Messages API, enough for the real `claude` CLI to run offline: it
//! answers `POST /v1/messages` with the streaming protocol the CLI uses (server-sent events:
//! message_start, content_block_start/delta/stop, message_delta, message_stop). The first reply to a
//! request that offers tools and carries the trigger phrase is a `Write` tool call creating a file;
//! every other reply is the text `Done.`. Requests are recorded for assertions.
//!
//! Modelled on `shared/claude-code/fake_messages_api.py` and NOTES.md (checked with 2.1.330).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, State};
use axum::http::{Method, header};
use axum::response::Response;
use serde_json::{Value, json};

/// What the stand-in does when the trigger phrase appears in the conversation.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Text in the user's prompt that triggers the tool call.
    pub trigger: String,
    /// Absolute path the `Write` tool call creates.
    pub file_path: PathBuf,
    pub content: String,
    /// Also a `TodoWrite` plan in the same reply, before the `Write`.
    pub plan: bool,
    /// Output tokens each reply reports (7 when unset).
    pub output_tokens: Option<u64>,
}

/// One request the CLI sent.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub stream: bool,
    pub tools: Vec<String>,
    pub messages: usize,
    /// The request's messages as JSON text (what the conversation held).
    pub conversation: String,
}

#[derive(Debug)]
struct Shared {
    script: Script,
    seen: Mutex<Vec<Seen>>,
}

pub struct FakeAnthropic {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeAnthropic {
    pub async fn start(script: Script) -> FakeAnthropic {
        let shared = Arc::new(Shared {
            script,
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake API serves");
        });
        FakeAnthropic { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeAnthropic {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let tools: Vec<String> = req["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let stream = req["stream"].as_bool().unwrap_or(false);
    shared.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.to_string(),
        stream,
        tools: tools.clone(),
        messages: messages.len(),
        conversation: Value::Array(messages.clone()).to_string(),
    });
    if method != Method::POST {
        return json_response(json!({}));
    }
    if uri.path().ends_with("/count_tokens") {
        return json_response(json!({"input_tokens": 10}));
    }
    if !uri.path().ends_with("/v1/messages") {
        return json_response(json!({}));
    }
    let has_tool_result = messages.iter().any(|m| {
        m["content"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "tool_result"))
    });
    let triggered = Value::Array(messages)
        .to_string()
        .contains(&shared.script.trigger);
    let (content, stop) = if triggered && !has_tool_result && tools.iter().any(|t| t == "Write") {
        let input = json!({
            "file_path": shared.script.file_path,
            "content": shared.script.content,
        });
        let mut blocks = vec![];
        if shared.script.plan {
            let todos = json!({"todos": [
                {"content": "Write the greeting", "status": "in_progress", "activeForm": "Writing the greeting"},
                {"content": "Check it", "status": "pending", "activeForm": "Checking it"},
            ]});
            blocks.push(
                json!({"type": "tool_use", "id": "toolu_00", "name": "TodoWrite", "input": todos}),
            );
        }
        blocks.push(json!({"type": "tool_use", "id": "toolu_01", "name": "Write", "input": input}));
        (blocks, "tool_use")
    } else {
        (vec![json!({"type": "text", "text": "Done."})], "end_turn")
    };
    let model = req["model"]
        .as_str()
        .unwrap_or("claude-stand-in")
        .to_string();
    // Every reply its own id, as the real API's are (a reader counts a message's usage once).
    let n = shared.seen.lock().unwrap().len();
    let output_tokens = shared.script.output_tokens.unwrap_or(7);
    let message = json!({
        "id": format!("msg_stand_in_{n:04}"), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": output_tokens},
    });
    if stream {
        sse_response(message, &content, stop)
    } else {
        json_response(message)
    }
}

fn json_response(v: Value) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .expect("valid response")
}

fn sse_response(message: Value, content: &[Value], stop: &str) -> Response {
    let mut body = String::new();
    let mut event = |name: &str, data: Value| {
        body.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    let mut start = message.clone();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    event(
        "message_start",
        json!({"type": "message_start", "message": start}),
    );
    for (i, block) in content.iter().enumerate() {
        let (first, delta) = if block["type"] == "text" {
            (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": block["text"]}),
            )
        } else {
            (
                json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
                json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}),
            )
        };
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": i, "content_block": first}),
        );
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": i, "delta": delta}),
        );
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        );
    }
    event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
               "usage": {"output_tokens": message["usage"]["output_tokens"]}}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(body))
        .expect("valid response")
}

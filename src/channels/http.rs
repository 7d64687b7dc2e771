//! The loopback HTTP endpoint for a Tor onion service: `POST /command` (an envelope in, the
//! reply out, 64 KiB at most) and `GET /healthz`. Error replies carry a status code that
//! matches their kind.

use crate::auth::MAX_ENVELOPE_BYTES;
use crate::gate::GateHandle;
use crate::origin::Channel;
use crate::reply::{CommandError, ErrorKind};
use crate::shutdown::Shutdown;
use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use tokio::net::TcpListener;

/// The router, for the daemon and for tests.
pub fn router(agent: GateHandle) -> Router {
    Router::new()
        .route("/command", post(command))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(agent)
}

/// Serves `router` on `listener` until shutdown, finishing requests in flight.
pub async fn serve(
    listener: TcpListener,
    agent: GateHandle,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router(agent))
        .with_graceful_shutdown(async move { shutdown.recv().await })
        .await
}

async fn command(State(agent): State<GateHandle>, body: Body) -> Response {
    let reply = match to_bytes(body, MAX_ENVELOPE_BYTES).await {
        Ok(bytes) => agent.submit(bytes.to_vec(), Channel::Http).await,
        Err(_) => {
            let error = CommandError::new(
                ErrorKind::TooLarge,
                format!("too large: an envelope is at most {MAX_ENVELOPE_BYTES} bytes"),
            );
            agent.refused(error, Channel::Http).await
        }
    };
    let status = reply.http_status();
    json_response(status, reply.into_json_string())
}

async fn healthz() -> Response {
    json_response(200, json!({"status": "ok"}).to_string())
}

async fn not_found() -> Response {
    json_response(
        404,
        json!({"error": "not found: use POST /command", "kind": "not_found"}).to_string(),
    )
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

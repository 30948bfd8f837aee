//! A webhook receiver for `bench/webhooks.sh`: answers every POST with 204 and counts them;
//! `GET /count` answers the count. It checks nothing, so the bench measures the sender.
//!
//! ```text
//! cargo build --release --example webhook_receiver
//! target/release/examples/webhook_receiver [ADDR]     # default 127.0.0.1:0; prints the address
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let count = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/hook",
            post(|State(n): State<Arc<AtomicU64>>, _body: axum::body::Bytes| async move {
                n.fetch_add(1, Ordering::Relaxed);
                StatusCode::NO_CONTENT
            }),
        )
        .route("/count", get(|State(n): State<Arc<AtomicU64>>| async move { n.load(Ordering::Relaxed).to_string() }))
        .with_state(count);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("receiver listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}

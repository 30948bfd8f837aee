//! The yardstick for `bench/run.sh`: the smallest rmcp server that does what Rapport's
//! MCP endpoint does on the wire (stateless, JSON responses, streamable HTTP nested in axum),
//! with one tool, `echo`, and no database or authentication.
//!
//! ```text
//! cargo build --release --example bare_mcp
//! target/release/examples/bare_mcp [ADDR]      # or BARE_ADDR; default 127.0.0.1:8090
//! ```

use std::sync::Arc;

use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{ServerCapabilities, ServerConfig},
    schemars, tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoInput {
    /// The text to send back.
    text: String,
}

#[derive(Clone)]
struct Bare {
    /// Built once in `main` and shared by every per-request handler.
    tool_router: Arc<ToolRouter<Bare>>,
}

#[tool_router]
impl Bare {
    #[tool(description = "Return the given text unchanged. Example: {\"text\": \"hi\"}")]
    async fn echo(&self, Parameters(EchoInput { text }): Parameters<EchoInput>) -> String {
        text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Bare {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BARE_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());

    let handler = Bare { tool_router: Arc::new(Bare::tool_router()) };
    let config = StreamableHttpServerConfig::default().with_legacy_session_mode(false).with_json_response(true);
    let service: StreamableHttpService<Bare, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(handler.clone()), Default::default(), config);
    let app = axum::Router::new().nest_service("/mcp", service);

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

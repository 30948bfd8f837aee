//! The MCP server: rmcp's `ServerHandler`, answering each request for the principal the
//! auth middleware put in the HTTP request. Tool handlers are thin: parse the arguments
//! into the contract's input type, call the domain, answer with the contract's output.

mod instructions;

use std::borrow::Cow;
use std::sync::Arc;

use rapport_tools::{ToolDef, Toolset, catalog};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, DiscoverResult, Implementation,
    InitializeRequestParams, InitializeResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use crate::auth::Principal;
use crate::state::AppState;

/// The protocol revisions Rapport speaks (SPEC section 5).
pub static PROTOCOL_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2026_07_28,
];

/// Tool definitions as rmcp sends them, built once.
static TOOLS: std::sync::LazyLock<ToolIndex> = std::sync::LazyLock::new(ToolIndex::build);

/// Tool definitions as rmcp sends them.
pub struct ToolIndex {
    tools: Vec<(&'static ToolDef, Tool)>,
}

impl ToolIndex {
    pub fn build() -> Self {
        let tools = catalog()
            .iter()
            .map(|def| {
                let mut tool = Tool::new(def.name, def.description.clone(), Arc::new(def.input_schema.clone()));
                tool.title = Some(def.title.to_string());
                tool.output_schema = Some(Arc::new(def.output_schema.clone()));
                tool.annotations = Some(
                    ToolAnnotations::new()
                        .read_only(def.read_only)
                        .destructive(def.destructive)
                        .idempotent(def.idempotent)
                        .open_world(false),
                );
                (def, tool)
            })
            .collect();
        ToolIndex { tools }
    }

    /// The tools this principal may call, narrowed to `toolsets` when given.
    pub fn visible(&self, principal: &Principal, toolsets: Option<&[Toolset]>) -> Vec<Tool> {
        self.tools
            .iter()
            .filter(|(def, _)| def.access.allows(&principal.scopes))
            .filter(|(def, _)| toolsets.is_none_or(|sets| def.toolset == Toolset::Core || sets.contains(&def.toolset)))
            .map(|(_, tool)| tool.clone())
            .collect()
    }
}

#[derive(Clone)]
pub struct RapportMcp {
    state: AppState,
}

impl RapportMcp {
    pub fn new(state: AppState) -> Self {
        RapportMcp { state }
    }
}

fn parts(ctx: &RequestContext<RoleServer>) -> Option<&http::request::Parts> {
    ctx.extensions.get::<http::request::Parts>()
}

fn principal(ctx: &RequestContext<RoleServer>) -> Result<Arc<Principal>, McpError> {
    parts(ctx)
        .and_then(|p| p.extensions.get::<Arc<Principal>>())
        .cloned()
        .ok_or_else(|| McpError::internal_error("request reached MCP without authentication", None))
}

/// `?toolsets=contacts,companies` on the endpoint URL.
fn toolsets(ctx: &RequestContext<RoleServer>) -> Option<Vec<Toolset>> {
    let query = parts(ctx)?.uri.query()?;
    let value = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "toolsets")?.1;
    Some(value.split(',').filter_map(|s| Toolset::parse(s.trim())).collect())
}

impl ServerHandler for RapportMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("rapport", env!("CARGO_PKG_VERSION")))
            .with_instructions(instructions::general())
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(PROTOCOL_VERSIONS)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        let principal = principal(&context)?;
        let mut info = self.negotiate_initialize(&request)?;
        info.instructions = Some(instructions::for_principal(&principal));
        Ok(info)
    }

    async fn discover(&self, context: RequestContext<RoleServer>) -> Result<DiscoverResult, McpError> {
        let principal = principal(&context)?;
        let info = self.get_info().with_instructions(instructions::for_principal(&principal));
        let mut result = DiscoverResult::from_server_info(PROTOCOL_VERSIONS.to_vec(), info);
        // The instructions name the caller's organization: no shared caches.
        result.cache_scope = CacheScope::Private;
        Ok(result)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let principal = principal(&context)?;
        let sets = toolsets(&context);
        let tools = TOOLS.visible(&principal, sets.as_deref());
        // Each key sees its own list; clients of 2026-07-28 must not share it.
        Ok(ListToolsResult::with_all_items(tools).with_cache_scope(CacheScope::Private))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let principal = principal(&context)?;
        let Some(def) = ToolDef::find(&request.name) else {
            return Err(McpError::invalid_params(
                format!("unknown tool `{}`; call tools/list for the tools this key may use", request.name),
                None,
            ));
        };
        // A 2026-07-28 client names itself in the request's `_meta`: that beats `User-Agent`.
        let named;
        let info = request.meta.as_ref().and_then(|m| m.client_info()).or_else(|| context.meta.client_info());
        let principal = match info {
            Some(info) => {
                let client = crate::store::ClientInfo {
                    name: info.name.chars().take(200).collect(),
                    version: Some(info.version.chars().take(100).collect()).filter(|v: &String| !v.is_empty()),
                };
                named = Principal {
                    via: crate::store::Via { client: Some(client), ..principal.via.clone() },
                    ..(*principal).clone()
                };
                &named
            }
            None => principal.as_ref(),
        };
        let outcome = crate::service::invoke(&self.state, principal, def, request.arguments.unwrap_or_default()).await;
        Ok(match outcome {
            Ok(value) => CallToolResult::structured(value),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.message)]),
        }
        .into())
    }
}

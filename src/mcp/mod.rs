//! The MCP server: rmcp's `ServerHandler`, answering each request for the principal the
//! auth middleware put in the HTTP request. Tool handlers are thin: parse the arguments
//! into the contract's input type, call the domain, answer with the contract's output.

mod instructions;
mod prompts;
mod resources;

use std::borrow::Cow;
use std::sync::Arc;

use rapport_tools::{Profile, ToolDef, Toolset, catalog};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    ContentBlock, DiscoverResult, GetPromptRequestParams, GetPromptResponse, Implementation, InitializeRequestParams,
    InitializeResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, RequestMetaObject,
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

/// Tool definitions as rmcp sends them, per profile.
pub struct ToolIndex {
    lean: Vec<(&'static ToolDef, Tool)>,
    full: Vec<(&'static ToolDef, Tool)>,
}

/// A tool as `tools/list` shows it in `profile`: the lean profile lists each argument's name
/// and type and an object answer (SPEC 5, 12 KB for the whole CRM); the full one the whole
/// schemas.
fn listed(def: &ToolDef, profile: Profile) -> Tool {
    let (input, output) = match profile {
        Profile::Lean => {
            let mut output = serde_json::Map::new();
            output.insert("type".into(), "object".into());
            (rapport_tools::schema::shallow(&def.input_schema), output)
        }
        Profile::Full => {
            let previewable = def.tool.effect() != rapport_tools::Effect::Read;
            (def.input_schema.clone(), rapport_tools::schema::listed_output(&def.output_schema, previewable))
        }
    };
    let mut tool = Tool::new(def.name, def.description.clone(), Arc::new(input));
    tool.title = Some(def.title.to_string());
    tool.output_schema = Some(Arc::new(output));
    // A read changes nothing: whether it would destroy or repeat safely says nothing more.
    let hints = ToolAnnotations::new().read_only(def.read_only).open_world(false);
    tool.annotations =
        Some(if def.read_only { hints } else { hints.destructive(def.destructive).idempotent(def.idempotent) });
    tool
}

impl ToolIndex {
    pub fn build() -> Self {
        let of = |profile| {
            catalog().iter().filter(|def| def.listed_in(profile)).map(|def| (def, listed(def, profile))).collect()
        };
        ToolIndex { lean: of(Profile::Lean), full: of(Profile::Full) }
    }

    /// The tools of `profile` this principal may call, narrowed to `toolsets` when given.
    pub fn visible(&self, principal: &Principal, profile: Profile, toolsets: Option<&[Toolset]>) -> Vec<Tool> {
        let tools = match profile {
            Profile::Lean => &self.lean,
            Profile::Full => &self.full,
        };
        tools
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
    principal_of(parts(ctx))
}

fn principal_of(parts: Option<&http::request::Parts>) -> Result<Arc<Principal>, McpError> {
    parts
        .and_then(|p| p.extensions.get::<Arc<Principal>>())
        .cloned()
        .ok_or_else(|| McpError::internal_error("request reached MCP without authentication", None))
}

/// A parameter of the endpoint URL's query.
fn url_param(parts: Option<&http::request::Parts>, name: &str) -> Option<String> {
    let query = parts?.uri.query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// `?toolsets=contacts,companies` on the endpoint URL.
fn toolsets(parts: Option<&http::request::Parts>) -> Option<Vec<Toolset>> {
    let value = url_param(parts, "toolsets")?;
    Some(value.split(',').filter_map(|s| Toolset::parse(s.trim())).collect())
}

/// `?profile=lean|full` on the endpoint URL (SPEC 5); lean when absent.
pub fn profile(ctx: &RequestContext<RoleServer>) -> Result<Profile, McpError> {
    profile_of(parts(ctx))
}

fn profile_of(parts: Option<&http::request::Parts>) -> Result<Profile, McpError> {
    match url_param(parts, "profile") {
        None => Ok(Profile::default()),
        Some(p) => Profile::parse(p.trim()).ok_or_else(|| {
            McpError::invalid_params(
                format!("unknown profile `{p}` in the endpoint URL: lean (the default) or full"),
                None,
            )
        }),
    }
}

/// `tools/list` for the request whose HTTP parts are `parts`.
pub(crate) fn list_tools(parts: Option<&http::request::Parts>) -> Result<ListToolsResult, McpError> {
    let principal = principal_of(parts)?;
    let sets = toolsets(parts);
    let tools = TOOLS.visible(&principal, profile_of(parts)?, sets.as_deref());
    // Each key sees its own list; clients of 2026-07-28 must not share it.
    Ok(ListToolsResult::with_all_items(tools).with_cache_scope(CacheScope::Private))
}

/// `tools/call` for the request whose HTTP parts are `parts`; `meta` is the request's
/// `_meta` where the transport moved it out of the parameters.
async fn call_tool(
    state: &AppState,
    parts: Option<&http::request::Parts>,
    request: CallToolRequestParams,
    meta: &RequestMetaObject,
) -> Result<CallToolResponse, McpError> {
    Ok(match run_call(state, parts, request, meta).await? {
        Ok(value) => structured(value),
        Err(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
    }
    .into())
}

/// What a `tools/call` comes to: the answer, or the message of the tool's error (a result
/// with `isError`); `Err` for a protocol error.
pub(crate) async fn run_call(
    state: &AppState,
    parts: Option<&http::request::Parts>,
    request: CallToolRequestParams,
    meta: &RequestMetaObject,
) -> Result<Result<serde_json::Value, String>, McpError> {
    let principal = principal_of(parts)?;
    let Some(def) = ToolDef::find(&request.name) else {
        return Err(McpError::invalid_params(
            format!("unknown tool `{}`; call tools/list for the tools this key may use", request.name),
            None,
        ));
    };
    // A 2026-07-28 client names itself in the request's `_meta`: that beats `User-Agent`.
    let named;
    let info = request.meta.as_ref().and_then(|m| m.client_info()).or_else(|| meta.client_info());
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
    let lean = profile_of(parts)? == Profile::Lean;
    let mut args = request.arguments.unwrap_or_default();
    let compacted = lean && rapport_tools::lean::compact_arguments(def.tool, &mut args);
    let outcome = crate::service::invoke(state, principal, def, args).await;
    Ok(match outcome {
        Ok(mut value) => {
            if lean {
                rapport_tools::lean::compact_answer(def.tool, &mut value, compacted);
            }
            Ok(value)
        }
        Err(e) => Err(e.message),
    })
}

/// Runs a tool for `principal` as a tools/call would, for what resources, prompts and
/// completion look up.
async fn run_tool(
    state: &AppState,
    principal: &Principal,
    tool: rapport_tools::Tool,
    args: serde_json::Value,
) -> Result<serde_json::Value, crate::service::ToolError> {
    let serde_json::Value::Object(args) = args else { unreachable!("tool arguments are an object") };
    crate::service::invoke(state, principal, ToolDef::of(tool), args).await
}

/// What `CallToolResult::structured` makes, with the text serialized through `io::Write`
/// rather than `Display` (`fmt::Write`): the same bytes, in about half the time.
pub(crate) fn structured(value: serde_json::Value) -> CallToolResult {
    let text = serde_json::to_string(&value).expect("a JSON value serializes");
    let mut result = CallToolResult::structured(serde_json::Value::Null);
    result.content = vec![ContentBlock::text(text)];
    result.structured_content = Some(value);
    result
}

impl ServerHandler for RapportMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .enable_completions()
            .build();
        ServerConfig::new(capabilities)
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
        info.instructions = Some(instructions::for_principal(&principal, profile(&context)?));
        Ok(info)
    }

    async fn discover(&self, context: RequestContext<RoleServer>) -> Result<DiscoverResult, McpError> {
        let principal = principal(&context)?;
        let info = self.get_info().with_instructions(instructions::for_principal(&principal, profile(&context)?));
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
        list_tools(parts(&context))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let principal = principal(&context)?;
        Ok(ListResourcesResult::with_all_items(resources::list(&principal)).with_cache_scope(CacheScope::Private))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(resources::templates()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let principal = principal(&context)?;
        let result = resources::read(&self.state, &principal, profile(&context)?, &request.uri).await?;
        Ok(result.with_cache_scope(CacheScope::Private).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let principal = principal(&context)?;
        let args = request.arguments.unwrap_or_default();
        Ok(prompts::get(&self.state, &principal, &request.name, args).await?.into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let principal = principal(&context)?;
        let given = request.context.as_ref().and_then(|c| c.arguments.as_ref());
        prompts::complete(&self.state, &principal, &request.r#ref, &request.argument, given).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        call_tool(&self.state, parts(&context), request, &context.meta).await
    }
}

//! What every handler shares: the settings fixed at start-up, the store, and what this
//! process keeps in memory (key uses, the authentication cache, rate limits, metrics).

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;
use ipnet::IpNet;

use crate::auth::cache::AuthCache;
use crate::auth::limits::Limits;
use crate::auth::usage::Usage;
use crate::config::{PublicUrl, ServeArgs};
use crate::metrics::Metrics;
use crate::store::Store;

/// Settings fixed at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub public_url: String,
    pub max_active_keys: u32,
    pub rate_limit: u32,
    pub query_keys: bool,
    /// Days a deleted record stays restorable.
    pub trash_days: u32,
    pub trusted_proxies: Vec<IpNet>,
    /// Browser origins allowed on the MCP endpoint: the public URL's, plus configured ones.
    pub allowed_origins: Vec<String>,
    /// `Host` values accepted on the MCP endpoint: the public URL's and loopback names.
    pub allowed_hosts: Vec<String>,
    /// Lets remote callers read `/metrics` (as a bearer token).
    pub metrics_token: Option<MetricsToken>,
    /// `RAPPORT_WEBHOOK_ALLOW_PRIVATE`: webhook targets on http or private networks.
    pub webhook_allow_private: bool,
    /// `RAPPORT_WEBHOOK_SENDER`: this process drains the webhook outbox.
    pub webhook_sender: bool,
}

/// `RAPPORT_METRICS_TOKEN`; `Debug` prints nothing of it.
#[derive(Clone)]
pub struct MetricsToken(pub String);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(…)")
    }
}

pub struct App {
    pub store: Arc<Store>,
    pub settings: Settings,
    pub usage: Usage,
    pub auth_cache: AuthCache,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
}

/// Shared by every handler; cloning is a reference count.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// How often the trash is purged and old idempotency keys forgotten.
pub const HOUSEKEEPING_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl App {
    /// An `App` that serves nothing: for commands that run a call as the server would.
    pub fn offline(store: Arc<Store>, settings: Settings) -> AppState {
        AppState(Arc::new(App {
            limits: Limits::new(settings.rate_limit, &store),
            settings,
            store,
            usage: Usage::default(),
            auth_cache: AuthCache::default(),
            metrics: Arc::new(Metrics::default()),
        }))
    }

    /// Purges the trash past `RAPPORT_TRASH_DAYS`, forgets idempotency keys past 24 hours
    /// and webhook deliveries 30 days after they ended. Every process may run it: each purge is one transaction, and a second finds
    /// nothing left to do.
    pub async fn housekeeping(&self) {
        let now = crate::time::now_ms();
        match crate::crm::trash::purge(&self.store, self.settings.trash_days, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "purged the trash"),
            Err(e) => tracing::warn!(error = %e, "could not purge the trash"),
        }
        match self.store.prune_deliveries(now - crate::webhooks::deliver::KEEP_ENDED_MS).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "forgot ended webhook deliveries"),
            Err(e) => tracing::warn!(error = %e, "could not forget ended webhook deliveries"),
        }
        if let Err(e) = self.store.expire_idempotency(now).await {
            tracing::warn!(error = %e, "could not expire idempotency keys");
        }
        match self.store.expire_approvals(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(approvals = n, "approvals expired unanswered"),
            Err(e) => tracing::warn!(error = %e, "could not expire approvals"),
        }
        use crate::auth::session::{IDLE_TIMEOUT_MS, THROTTLE_WINDOW_MS};
        if let Err(e) = self.store.expire_console(now - THROTTLE_WINDOW_MS, now - IDLE_TIMEOUT_MS, now).await {
            tracing::warn!(error = %e, "could not expire console sessions and links");
        }
    }
}

impl Settings {
    pub fn new(args: &ServeArgs, addr: SocketAddr, max_active_keys: u32) -> anyhow::Result<Self> {
        let url = PublicUrl::parse(&args.public_url.clone().unwrap_or_else(|| format!("http://{addr}")))
            .map_err(anyhow::Error::msg)?;
        let (origin, port) = (url.origin(), url.port());
        let host = url.host().map(|h| h.to_string()).unwrap_or_default();
        let public_url = url.as_str().to_owned();
        let mut allowed_origins = vec![origin];
        allowed_origins.extend(args.allowed_origins.iter().map(|o| o.trim().trim_end_matches('/').to_owned()));
        allowed_origins.retain(|o| !o.is_empty());
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let mut allowed_hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        if let Some(p) = port {
            allowed_hosts.push(format!("{host}:{p}"));
        }
        allowed_hosts.push(host);
        let trusted_proxies = args
            .trusted_proxies
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                let s = s.trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .with_context(|| format!("RAPPORT_TRUSTED_PROXIES: `{s}` is not a CIDR"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Settings {
            public_url,
            max_active_keys,
            rate_limit: args.rate_limit,
            query_keys: args.query_keys,
            trash_days: args.trash_days,
            trusted_proxies,
            allowed_origins,
            allowed_hosts,
            metrics_token: args.metrics_token.clone().filter(|t| !t.trim().is_empty()).map(MetricsToken),
            webhook_allow_private: args.webhook_allow_private,
            webhook_sender: args.webhook_sender,
        })
    }
}

//! The server: built (database opened and migrated, address bound), then run until told to
//! stop, with its background work (key-use flushes, housekeeping, the webhook sender).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::cache::AuthCache;
use crate::auth::limits::Limits;
use crate::auth::usage::{FLUSH_EVERY, Usage};
use crate::config::ServeArgs;
use crate::metrics::Metrics;
use crate::state::{App, AppState, HOUSEKEEPING_EVERY, Settings};
use crate::store::Store;

/// A bound, ready server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    setup_link: Option<crate::keys::access::Link>,
}

/// While nobody of organization `default` can log in to the console (a new install, or a
/// restart before setup), a fresh one-time setup link for its owner.
async fn first_run_link(store: &Store, public_url: &str) -> anyhow::Result<Option<crate::keys::access::Link>> {
    let Some(org) = store.org_by_name("default").await? else { return Ok(None) };
    if store.org_has_login(&org.id).await? {
        return Ok(None);
    }
    let server = crate::crm::Principal::system(org);
    match crate::keys::access::setup_link(store, &server, None, public_url).await {
        Ok(link) => Ok(Some(link)),
        // No active owner to set up: the command line can still make one.
        Err(crate::keys::KeyError::NotFound(_) | crate::keys::KeyError::Invalid(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Server {
    /// Opens the database, migrates it, bootstraps an empty one, and binds the address.
    pub async fn build(args: &ServeArgs, database_url: &str, max_active_keys: u32) -> anyhow::Result<Server> {
        crate::webhooks::deliver::install_crypto();
        let store = Arc::new(crate::store::Store::connect(database_url, crate::webhooks::announcer()).await?);
        if crate::keys::bootstrap(store.as_ref()).await? {
            tracing::info!("created organization `default` with owner owner@localhost");
        }
        let listener =
            TcpListener::bind(&args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
        let addr = listener.local_addr()?;
        let settings = Settings::new(args, addr, max_active_keys)?;
        let setup_link = first_run_link(&store, &settings.public_url).await?;
        let app = App {
            limits: Limits::new(settings.rate_limit, &store),
            settings,
            store,
            usage: Usage::default(),
            auth_cache: AuthCache::default(),
            metrics: Arc::new(Metrics::default()),
        };
        Ok(Server { listener, state: AppState(Arc::new(app)), setup_link })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The console's one-time setup link, when this start made one.
    pub fn setup_link(&self) -> Option<&str> {
        self.setup_link.as_ref().map(|l| l.url.as_str())
    }

    /// Serves until `shutdown` is cancelled, then flushes what is held in memory.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let state = self.state.clone();
        state.store.watch(shutdown.clone());
        let flusher = {
            let state = state.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(FLUSH_EVERY);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            state.usage.flush(state.store.as_ref()).await;
                            state.limits.forget_idle().await;
                        }
                        _ = stop.cancelled() => break,
                    }
                }
            })
        };
        let housekeeping = {
            let state = state.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
                loop {
                    tokio::select! {
                        _ = tick.tick() => state.housekeeping().await,
                        _ = stop.cancelled() => break,
                    }
                }
            })
        };
        let sender = state.settings.webhook_sender.then(|| {
            let sender = crate::webhooks::deliver::Sender {
                store: state.store.clone(),
                metrics: state.metrics.clone(),
                allow_private: state.settings.webhook_allow_private,
            };
            tokio::spawn(sender.run(shutdown.clone()))
        });
        let router = crate::http::router(state.clone(), shutdown.child_token());
        axum::serve(self.listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
        let _ = flusher.await;
        let _ = housekeeping.await;
        if let Some(sender) = sender {
            let _ = sender.await;
        }
        state.usage.flush(state.store.as_ref()).await;
        Ok(())
    }
}

//! The HTTP application: shared state, the router with its middleware, and
//! the server loop with graceful shutdown.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::DefaultBodyLimit,
    http::StatusCode,
    response::{IntoResponse, Response},
    Router,
};
use tessera_core::audit::RequestContext;
use tessera_store::Store;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::{
    client::ClientInfo,
    config::Config,
    dispatcher::Dispatcher,
    error::ApiError,
    metrics::Metrics,
    request_id, routes,
    runtime::{Services, StartupError},
    scheduler,
    service::TokenService,
};

/// Largest request body we read: bigger bodies get 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    services: Arc<Services>,
    trust_proxy_headers: bool,
    openapi_json: String,
}

impl AppState {
    pub fn new(services: Arc<Services>, trust_proxy_headers: bool) -> Self {
        let (_, openapi) = routes::api_router().split_for_parts();
        let openapi_json = openapi
            .to_pretty_json()
            .expect("the OpenAPI document serializes");
        Self(Arc::new(Inner {
            services,
            trust_proxy_headers,
            openapi_json,
        }))
    }

    pub fn upstream(&self) -> &tessera_upstream::TokenCache {
        &self.0.services.upstream
    }

    pub fn webhooks(&self) -> &crate::service::WebhookService {
        &self.0.services.webhooks
    }

    pub fn tokens(&self) -> &TokenService {
        &self.0.services.tokens
    }

    pub fn mfa(&self) -> &crate::service::MfaService {
        &self.0.services.mfa
    }

    pub fn auth_codes(&self) -> &crate::service::AuthCodeService {
        &self.0.services.auth_codes
    }

    pub fn invites(&self) -> &crate::service::InviteService {
        &self.0.services.invites
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.services.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.services.metrics
    }

    pub fn trust_proxy_headers(&self) -> bool {
        self.0.trust_proxy_headers
    }

    pub fn openapi_json(&self) -> &str {
        &self.0.openapi_json
    }

    /// The audit context for a request, with IP and user agent encrypted.
    pub fn seal_context(&self, client: &ClientInfo) -> RequestContext {
        let ring = &self.0.services.audit_keyring;
        RequestContext {
            request_id: client.request_id.clone(),
            ip_sealed: client
                .ip
                .as_ref()
                .map(|ip| ring.seal(ip.as_bytes(), "audit.ip")),
            user_agent_sealed: client
                .user_agent
                .as_ref()
                .map(|ua| ring.seal(ua.as_bytes(), "audit.user_agent")),
        }
    }
}

/// Builds the router over `state`.
pub fn router(state: AppState) -> Router {
    let (api, _) = routes::api_router().split_for_parts();
    api.fallback(|| async {
        ApiError::not_found("not_found", "no such endpoint; see /openapi.json")
    })
    .method_not_allowed_fallback(|| async {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not accept that method; see /openapi.json",
        )
    })
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        request_id::layer,
    ))
    .layer(CatchPanicLayer::custom(|_| panic_response()))
    .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
    .with_state(state)
}

/// A panic is a bug: log it (the panic hook prints the message) and answer
/// with a plain 500 problem, keeping the process alive.
fn panic_response() -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "an internal error occurred; it has been logged",
    )
    .into_response()
}

/// A bound, not yet running server. Binding first lets tests use port 0.
pub struct Server {
    listener: TcpListener,
    services: Services,
    config: Config,
}

impl Server {
    pub async fn bind(config: Config) -> anyhow::Result<Self> {
        let services = Services::open(&config).await.map_err(startup_hint)?;
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} (TESSERA_LISTEN / --listen): {e}",
                config.listen
            )
        })?;
        Ok(Self {
            listener,
            services,
            config,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then flushes buffered writes. Runs
    /// the background writer, the webhook dispatcher and the scheduler
    /// beside the HTTP server.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let local_addr = self.local_addr();
        let services = Arc::new(self.services);
        let background = services.background.clone();
        let mut tasks = vec![background.spawn(self.config.tokens.usage_flush_interval)];
        if let Some(url) = &self.config.webhooks.default_url {
            let endpoint = services
                .webhooks
                .ensure_default(url, self.config.webhooks.default_secret.as_ref())
                .await?;
            if self.config.webhooks.default_secret.is_none() {
                tracing::warn!(
                    endpoint_id = %endpoint.id,
                    "TOKENS_WEBHOOK_SECRET is not set, so deliveries to TOKENS_WEBHOOK_URL are signed \
                     with a generated secret; run `tessera webhooks endpoints rotate-secret {}` to get \
                     one for the receiver",
                    endpoint.id
                );
            }
        }
        let dispatcher = Arc::new(Dispatcher::new(
            services.store.clone(),
            self.config.webhooks.clone(),
            services.webhook_keyring.clone(),
            services.outbox_keyring.clone(),
            services.metrics.clone(),
        ));
        tasks.push(dispatcher.spawn());
        if self.config.jobs.enabled {
            tasks.extend(scheduler::spawn(services.clone(), self.config.jobs.clone()));
        }
        tracing::info!(
            listen = %local_addr,
            database = %self.config.database_url_for_logs(),
            "tessera is serving"
        );
        let app = router(AppState::new(services, self.config.trust_proxy_headers));
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        for t in tasks {
            t.abort();
        }
        // Bounded, so a dead database cannot hold shutdown forever.
        let _ = tokio::time::timeout(Duration::from_secs(5), background.flush()).await;
        tracing::info!("tessera stopped");
        Ok(())
    }
}

fn startup_hint(e: StartupError) -> anyhow::Error {
    anyhow::Error::new(e)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

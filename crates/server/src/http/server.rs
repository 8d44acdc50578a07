//! The server loop: bind, serve the router beside the background tasks
//! (background writer, invalidation reader, webhook dispatcher, scheduler), and shut down
//! gracefully, flushing buffered writes. How connections are accepted,
//! capped and timed out is `connections`' business.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::net::TcpListener;

use super::{
    connections::{self, ConnectionLimits, Plain},
    fd_limit, router,
    tls::Tls,
    watchdog::Deadlines,
};
use crate::{
    config::Config,
    jobs::{dispatcher::Dispatcher, invalidations, scheduler},
    runtime::{Services, StartupError},
};

/// A bound, not yet running server. Binding first lets tests use port 0.
pub struct Server {
    listener: TcpListener,
    services: Services,
    config: Config,
    limits: ConnectionLimits,
    /// HTTPS when `TESSERA_TLS_CERT` and `TESSERA_TLS_KEY` are set.
    tls: Option<Tls>,
}

impl Server {
    pub async fn bind(config: Config) -> anyhow::Result<Self> {
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        // Only `serve` sends links, so only it says where they point.
        for line in config.links.defaults_in_use() {
            tracing::warn!("{line}");
        }
        let limits = connection_limits(&config);
        let tls = config.tls.as_ref().map(Tls::load).transpose()?;
        let services = Services::open(&config).await.map_err(startup_hint)?;
        services.check_totp_keys().await.map_err(startup_hint)?;
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
            limits,
            tls,
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
        // Credential changes committed by other processes reach the caches.
        tasks.extend(invalidations::spawn(services.clone()));
        // Keys rotated by `tessera` commands or other replicas.
        tasks.push(
            services
                .keys
                .spawn_reloader(services.keys.reload_interval()),
        );
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
            https = self.tls.is_some(),
            client_certificates = self.tls.as_ref().is_some_and(Tls::requests_client_certificates),
            "tessera is serving"
        );
        // Event streams never end by themselves: end them when shutdown
        // begins, before the connections are drained.
        let events = services.clone();
        let shutdown = async move {
            shutdown.await;
            events.events.close();
        };
        let app = router::app(services, self.config.proxies.clone());
        match self.tls {
            Some(tls) => connections::serve(self.listener, app, self.limits, tls, shutdown).await,
            None => connections::serve(self.listener, app, self.limits, Plain, shutdown).await,
        }
        for t in tasks {
            t.abort();
        }
        // Bounded, so a dead database cannot hold shutdown forever.
        let _ = tokio::time::timeout(Duration::from_secs(5), background.flush()).await;
        tracing::info!("tessera stopped");
        Ok(())
    }
}

/// The connection settings, with the cap derived from the open-file limit
/// (raised here first) when none is configured.
fn connection_limits(config: &Config) -> ConnectionLimits {
    let c = &config.connections;
    let fd_limit = fd_limit::raise();
    let max_connections = c
        .max_connections
        .unwrap_or_else(|| fd_limit::default_max_connections(fd_limit));
    if fd_limit.is_some_and(|n| max_connections as u64 >= n) {
        tracing::warn!(
            max_connections,
            open_file_limit = fd_limit,
            "TESSERA_HTTP_MAX_CONNECTIONS is not below the open-file limit; \
             a flood of connections can exhaust file descriptors"
        );
    }
    tracing::info!(
        max_connections,
        header_timeout = ?c.header_timeout,
        body_timeout = ?c.body_timeout,
        idle_timeout = ?c.idle_timeout,
        "connection limits"
    );
    ConnectionLimits {
        deadlines: Deadlines {
            header: c.header_timeout,
            idle: c.idle_timeout,
        },
        body_timeout: c.body_timeout,
        max_connections,
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
